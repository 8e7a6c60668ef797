// The widget survives network drops: unsent messages are kept, resent, and stored once.
//
// Usage: node tests/browser/reconnect.mjs <base_url> [questions_json]   (against a gateway
// whose knowledge base answers every question; see tests/browser.rs)
//
// The page's WebSocket is wrapped so the test can cut the connection and keep new ones
// from reaching the gateway ("offline"), without touching the server. Prints one JSON
// line {"ok":true,...} and exits 0, or {"ok":false,"error":..} and exits 1.

import { finish, launchPersistent, runBounded } from "./harness.mjs";

const TIMEOUT_MS = 15_000;
const baseUrl = (process.argv[2] || "").replace(/\/+$/, "");
// Four questions the core answers; override with a JSON array to match the knowledge base.
const QUESTIONS = process.argv[3]
  ? JSON.parse(process.argv[3])
  : ["first question", "sent while offline", "ack lost", "sent before reload"];
if (!baseUrl) finish({ ok: false, error: "usage: node reconnect.mjs <base_url>" });
let browser;

// Runs in the page before the widget: every socket is recorded; while offline, new
// sockets go to a closed port, as if the network were down.
function wrapWebSocket() {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__offline = false;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(window.__offline ? "ws://127.0.0.1:9/" : url, protocols);
      window.__sockets.push(this);
    }
    // With __dropAfterSend, the next message reaches the gateway but its ack is lost.
    send(data) {
      super.send(data);
      if (window.__dropAfterSend && String(data).includes('"type":"message"')) {
        window.__dropAfterSend = false;
        this.close();
      }
    }
  };
  window.__cut = () => {
    window.__offline = true;
    window.__sockets.forEach((socket) => socket.close());
  };
}

const customer = (page, text) =>
  page.locator('[data-testid="sb-message"][data-author="customer"]', { hasText: text });
const aiCount = (page) => page.locator('[data-testid="sb-message"][data-author="ai"]').count();

async function send(page, text) {
  await page.locator('[data-testid="sb-input"]').fill(text);
  await page.locator('[data-testid="sb-input"]').press("Enter");
}

async function waitFor(predicate, what) {
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function openWidget(page) {
  await page.locator('[data-testid="sb-launcher"]').waitFor({ timeout: TIMEOUT_MS });
  if (!(await page.locator("#sb-panel").isVisible())) {
    await page.locator('[data-testid="sb-launcher"]').click();
  }
}

async function run() {
  browser = await launchPersistent();
  const context = browser.context;
  await context.addInitScript(wrapWebSocket);
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${baseUrl}/`);
  await openWidget(page);

  await send(page, QUESTIONS[0]);
  await waitFor(async () => (await aiCount(page)) === 1, "the first answer");

  // Drop while online, send while offline: the message waits as "Sending…".
  await page.evaluate(() => window.__cut());
  await send(page, QUESTIONS[1]);
  await waitFor(async () => (await page.locator(".sb-pending").count()) === 1, "a pending message");

  // Back online without a reload: the backoff reconnects and the queue is resent.
  await page.evaluate(() => { window.__offline = false; });
  await waitFor(async () => (await aiCount(page)) === 2, "the answer after reconnecting");
  await waitFor(async () => (await page.locator(".sb-pending").count()) === 0, "the ack");

  // The ack is lost: the widget resends the same client_id and the gateway stores it once.
  await page.evaluate(() => { window.__dropAfterSend = true; });
  await send(page, QUESTIONS[2]);
  await waitFor(async () => (await aiCount(page)) === 3, "the answer after the lost ack");
  await waitFor(async () => (await page.locator(".sb-pending").count()) === 0, "the resent ack");

  // Offline again, send, then reload: the queue survives in localStorage and is sent.
  await page.evaluate(() => window.__cut());
  await send(page, QUESTIONS[3]);
  await waitFor(async () => (await page.locator(".sb-pending").count()) === 1, "a pending message");
  await page.reload();
  await openWidget(page);
  await waitFor(async () => (await aiCount(page)) === 4, "the answer after reload");

  // One more reload: the transcript holds each message exactly once.
  await page.reload();
  await openWidget(page);
  await waitFor(async () => (await aiCount(page)) === 4, "the history");
  const counts = {};
  for (const text of QUESTIONS) {
    counts[text] = await customer(page, text).count();
    if (counts[text] !== 1) throw new Error(`${JSON.stringify(text)} shown ${counts[text]} times`);
  }
  return { ok: true, customer_messages: counts, ai_answers: await aiCount(page) };
}

// Every wait inside is bounded; the overall bound only catches a hung browser.
await runBounded(run, { timeoutMs: 8 * TIMEOUT_MS, cleanup: async () => browser?.close() });
