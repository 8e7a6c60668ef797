// The web desk in a real browser, as an agent uses it.
//
// Usage: node tests/browser/webdesk.mjs <base_url> <screenshot_dir> <user> <password> <customer> <reply>
//
// Expects one escalation from <customer> waiting in the desk's queue. In headless Debian
// chromium: signs in through the form at a laptop width, finds the escalation in the queue,
// opens it, reads the briefing, claims it, sends <reply>; then, signed in again at a phone's
// width (390 px, mobile emulation), checks the queue and the conversation fit the screen;
// back on the laptop, resolves the conversation and waits for it to leave the queue.
// Screenshots: desk-queue.png, desk-conversation.png, phone-queue.png, phone-conversation.png.
// Prints one JSON line with what the agent saw and exits 0, or {"ok":false,"error":..} and exits 1.

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { finish, launch, runBounded } from "./harness.mjs";

const STEP_TIMEOUT_MS = 10_000;
const OVERALL_TIMEOUT_MS = 90_000;

const [baseArg, screenshotArg, user, password, customer, reply] = process.argv.slice(2);
if (!baseArg || !screenshotArg || !user || !password || !customer || !reply) {
  finish({ ok: false, error: "usage: node webdesk.mjs <base_url> <screenshot_dir> <user> <password> <customer> <reply>" });
}
const baseUrl = baseArg.replace(/\/+$/, "");
const screenshotDir = resolve(screenshotArg);
const pageErrors = [];
let launched;

async function signedInPage(contextOptions) {
  const context = await launched.browser.newContext(contextOptions);
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  // Failed loads are reported with their address below; the browser's own favicon probe is no fault.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      pageErrors.push(message.text());
    }
  });
  page.on("response", (response) => {
    if (response.status() >= 400 && !response.url().endsWith("/favicon.ico")) {
      pageErrors.push(`${response.status()} ${response.url()}`);
    }
  });
  await page.goto(`${baseUrl}/desk`, { waitUntil: "domcontentloaded", timeout: STEP_TIMEOUT_MS });
  await page.getByLabel("Name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#live").filter({ hasText: "live" }).waitFor({ timeout: STEP_TIMEOUT_MS });
  return page;
}

function queueItem(page) {
  return page.locator("#queue li").filter({ hasText: customer });
}

/** Whether the page scrolls sideways, as a thumb on a phone would find out. */
async function overflow(page) {
  return page.evaluate(() => ({
    scroll_width: document.scrollingElement.scrollWidth,
    inner_width: window.innerWidth,
  }));
}

async function run() {
  mkdirSync(screenshotDir, { recursive: true });
  launched = await launch();

  const desk = await signedInPage({ viewport: { width: 1280, height: 820 } });
  const item = queueItem(desk);
  await item.waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  const queued = (await item.innerText()).trim();
  await desk.screenshot({ path: join(screenshotDir, "desk-queue.png"), fullPage: true });

  await item.click();
  const conversation = desk.locator("#conversation");
  await conversation.waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  await desk.locator("#transcript li").first().waitFor({ timeout: STEP_TIMEOUT_MS });
  const facts = await desk.locator("#facts").innerText();
  const transcript = await desk.locator("#transcript").innerText();

  await conversation.getByRole("button", { name: "Claim" }).click();
  await desk.locator("#conv-title").filter({ hasText: `claimed by` }).waitFor({ timeout: STEP_TIMEOUT_MS });
  const titleAfterClaim = await desk.locator("#conv-title").innerText();

  await desk.getByLabel("Reply to the customer").fill(reply);
  await desk.getByRole("button", { name: "Send reply" }).click();
  await desk.locator("#transcript li.agent").filter({ hasText: reply }).waitFor({ timeout: STEP_TIMEOUT_MS });
  // The box is cleared once the gateway took the reply, which may land just after the live
  // update that shows it: wait for that (bounded), then read what the agent sees.
  await desk
    .waitForFunction(() => document.querySelector("#reply").value === "", null, { timeout: STEP_TIMEOUT_MS })
    .catch(() => {});
  const replyBoxAfterSend = await desk.getByLabel("Reply to the customer").inputValue();
  await desk.screenshot({ path: join(screenshotDir, "desk-conversation.png"), fullPage: true });

  const phone = await signedInPage({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  const phoneItem = queueItem(phone);
  await phoneItem.waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  const phoneQueue = await overflow(phone);
  await phone.screenshot({ path: join(screenshotDir, "phone-queue.png"), fullPage: true });
  await phoneItem.tap();
  await phone.locator("#transcript li.agent").filter({ hasText: reply }).waitFor({ timeout: STEP_TIMEOUT_MS });
  const phoneConversation = await overflow(phone);
  const phoneReplyBox = await phone.getByLabel("Reply to the customer").boundingBox();
  const phoneBack = await phone.getByRole("button", { name: "← Queue" }).isVisible();
  await phone.screenshot({ path: join(screenshotDir, "phone-conversation.png"), fullPage: true });
  await phone.context().close();

  await conversation.getByRole("button", { name: "Resolve" }).click();
  await item.waitFor({ state: "detached", timeout: STEP_TIMEOUT_MS });
  const emptyShown = await desk.locator("#empty").isVisible();

  return {
    ok: true,
    queued,
    facts,
    transcript,
    title_after_claim: titleAfterClaim,
    reply_box_after_send: replyBoxAfterSend,
    phone_queue: phoneQueue,
    phone_conversation: phoneConversation,
    phone_reply_box: phoneReplyBox,
    phone_back_button: phoneBack,
    queue_empty_after_resolve: emptyShown,
    page_errors: pageErrors,
  };
}

await runBounded(run, {
  timeoutMs: OVERALL_TIMEOUT_MS,
  cleanup: async () => launched?.close(),
  pageErrors,
});
