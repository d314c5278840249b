// What every browser test file shares: Debian's Chromium launched headless with the flags this
// machine's closed network needs, a named check that counts passes and failures, and the exit.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

export const base = process.argv[2];
export const out = process.argv[3] ?? "artifacts";
mkdirSync(out, { recursive: true });

export const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

let failed = 0, passed = 0, escaped = 0;
export async function check(name, fn) {
  try { await fn(); passed++; console.log(`ok - ${name}`); }
  catch (e) { failed++; console.log(`not ok - ${name}\n${e.stack}`); }
}

export const shot = (page, name) => page.screenshot({ path: `${out}/${name}.png`, fullPage: true });

// An error thrown outside any check (a context that cannot start, a page that never loads):
// the run fails, however many checks passed before it.
export function escapedError(e) {
  escaped++;
  console.log(`not ok - an error escaped the checks\n${e?.stack ?? e}`);
}

// Green means every check ran and passed: a failed check, an escaped error or a run in which no
// check ran at all exits 1.
export async function finish() {
  await browser.close().catch((e) => escapedError(e));
  console.log(`${passed} passed, ${failed} failed, ${escaped} escaped`);
  if (passed === 0 && failed === 0) console.log("not ok - no check ran");
  process.exit(failed || escaped || passed === 0 ? 1 : 0);
}
