// The web chat widget in a real browser, as a visitor uses it.
//
// Usage: node tests/browser/webchat.mjs <base_url> <screenshot_dir> [page_path]
//
// Opens <base_url><page_path> (default `/`, the demo page) in headless Debian chromium with a fresh profile, opens the widget,
// asks a question, waits for the AI's answer, presses "Talk to a human", waits for the
// escalation notice, saves widget.png, reloads and checks the history is still shown.
// Prints one JSON line: {"ok":true,"ai_answer":..,"notice":..,"history_after_reload":N}
// and exits 0, or {"ok":false,"error":..} and exits 1.

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { collectErrors, finish, launchPersistent, runBounded } from "./harness.mjs";

const QUESTION = "How do I reset my password?";
const ANSWER_TIMEOUT_MS = 15_000;
const STEP_TIMEOUT_MS = 10_000;
const OVERALL_TIMEOUT_MS = 90_000;

const [baseArg, screenshotArg, pathArg] = process.argv.slice(2);
const pagePath = pathArg || "/";
if (!baseArg || !screenshotArg) {
  finish({ ok: false, error: "usage: node webchat.mjs <base_url> <screenshot_dir>" });
}
const baseUrl = baseArg.replace(/\/+$/, "");
const screenshotDir = resolve(screenshotArg);
const pageErrors = [];
let browser;

const selectors = {
  launcher: '[data-testid="sb-launcher"]',
  panel: "#sb-panel",
  input: '[data-testid="sb-input"]',
  send: '[data-testid="sb-send"]',
  human: '[data-testid="sb-human"]',
  messages: '[data-testid="sb-message"]',
  ai: '[data-testid="sb-message"][data-author="ai"]',
  system: '[data-testid="sb-message"][data-author="system"]',
  agent: '[data-testid="sb-message"][data-author="agent"]',
};

// With SB_WAIT_FOR_AGENT=1 the script announces the escalation on a line of its own
// ({"escalated":true}) and waits for an agent's reply before going on, so a test can answer
// from the desk in between.
const WAIT_FOR_AGENT = process.env.SB_WAIT_FOR_AGENT === "1";

/** Opens the chat panel unless the widget restored it open. */
async function openWidget(page) {
  await page.locator(selectors.launcher).waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  if (!(await page.locator(selectors.panel).isVisible())) {
    await page.locator(selectors.launcher).click();
  }
  await page.locator(selectors.input).waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
}

async function run() {
  mkdirSync(screenshotDir, { recursive: true });
  browser = await launchPersistent({ viewport: { width: 1280, height: 820 } });
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  collectErrors(page, pageErrors);

  await page.goto(`${baseUrl}${pagePath}`, { waitUntil: "domcontentloaded", timeout: STEP_TIMEOUT_MS });
  await openWidget(page);

  await page.locator(selectors.input).fill(QUESTION);
  await page.locator(selectors.send).click();
  const aiMessage = page.locator(selectors.ai).first();
  await aiMessage.waitFor({ state: "visible", timeout: ANSWER_TIMEOUT_MS });
  const aiAnswer = (await aiMessage.locator(".sb-bubble").innerText()).trim();

  const human = page.locator(selectors.human);
  await human.waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  await human.click();
  const notice = page.locator(selectors.system).first();
  await notice.waitFor({ state: "visible", timeout: ANSWER_TIMEOUT_MS });
  const noticeText = (await notice.innerText()).trim();
  let agentMessage = null;
  if (WAIT_FOR_AGENT) {
    process.stdout.write(JSON.stringify({ escalated: true }) + "\n");
    const agent = page.locator(selectors.agent).first();
    await agent.waitFor({ state: "visible", timeout: ANSWER_TIMEOUT_MS * 2 });
    agentMessage = (await agent.innerText()).trim();
  }
  // Let the panel settle (scroll, button hidden) so the screenshot shows the final state.
  await page.waitForTimeout(400);
  await page.screenshot({ path: join(screenshotDir, "widget.png") });

  const shownBefore = await page.locator(selectors.messages).count();
  await page.reload({ waitUntil: "domcontentloaded", timeout: STEP_TIMEOUT_MS });
  await openWidget(page);
  await page.locator(selectors.system).first().waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  await page.waitForFunction(
    ([selector, expected]) => {
      const host = document.getElementById("switchboard-webchat");
      const scope = host?.shadowRoot ?? document;
      return scope.querySelectorAll(selector).length >= expected;
    },
    [selectors.messages, shownBefore],
    { timeout: STEP_TIMEOUT_MS },
  );
  const historyAfterReload = await page.locator(selectors.messages).count();
  if ((await page.locator(selectors.ai).count()) < 1) {
    throw new Error("the AI answer is missing after reload");
  }
  await page.screenshot({ path: join(screenshotDir, "widget-after-reload.png") });

  return {
    ok: true,
    ai_answer: aiAnswer,
    notice: noticeText,
    agent_message: agentMessage,
    history_after_reload: historyAfterReload,
  };
}

await runBounded(run, {
  timeoutMs: OVERALL_TIMEOUT_MS,
  cleanup: async () => browser?.close(),
  pageErrors,
});
