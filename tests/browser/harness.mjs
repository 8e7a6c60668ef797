// What every browser script shares: Debian's chromium launched the way this machine allows,
// page errors collected, one bounded run, and one JSON line as the result.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

// Without the background-networking flags chromium keeps calling home, and this machine's
// closed network refuses each call.
const LAUNCH = {
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};

/** Prints `result` as one JSON line and exits 0 when it is ok, 1 when not. */
export function finish(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.ok ? 0 : 1);
}

/** A browser with its own profile directory, removed again by `close()`. */
export async function launchPersistent(contextOptions = {}) {
  const profileDir = mkdtempSync(join(tmpdir(), "switchboard-chromium-"));
  const context = await chromium.launchPersistentContext(profileDir, { ...LAUNCH, ...contextOptions });
  const close = async () => {
    try { await context.close(); } catch { /* the browser may already be gone */ }
    rmSync(profileDir, { recursive: true, force: true });
  };
  return { context, close };
}

/** A browser without a profile, for several contexts (sizes, sign-ins) side by side. */
export async function launch() {
  const browser = await chromium.launch(LAUNCH);
  const close = async () => {
    try { await browser.close(); } catch { /* the browser may already be gone */ }
  };
  return { browser, close };
}

/** Collects the page's script errors and console errors into `errors`. */
export function collectErrors(page, errors) {
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
}

/**
 * Runs `run` within `timeoutMs`, then `cleanup`, and finishes with what `run` returned, or
 * with its first error line (and `pageErrors`) when it failed or ran out of time.
 */
export async function runBounded(run, { timeoutMs, cleanup, pageErrors = [] }) {
  const overall = setTimeout(async () => {
    await cleanup();
    finish({ ok: false, error: `timed out after ${timeoutMs} ms`, page_errors: pageErrors });
  }, timeoutMs);
  try {
    const result = await run();
    clearTimeout(overall);
    await cleanup();
    finish(result);
  } catch (error) {
    clearTimeout(overall);
    await cleanup();
    finish({ ok: false, error: String(error?.message ?? error).split("\n")[0], page_errors: pageErrors });
  }
}
