// What the console's browser tests share: Debian's chromium launched headless through
// puppeteer-core, a page that collects Content-Security-Policy violations and script errors, and
// a check that prints "ok: …" or throws.
import puppeteer from 'puppeteer-core';

export function check(condition, what) {
  if (!condition) throw new Error('FAILED: ' + what);
  console.log('ok: ' + what);
}

export async function launchChromium() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

// A 1200x900 page; `violations` collects CSP refusals and script errors on pages under `origin`.
export async function watchedPage(browser, origin) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const violations = [];
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/.test(message.text()) && page.url().startsWith(origin)) {
      violations.push(message.text());
    }
  });
  page.on('pageerror', (error) => violations.push('page error: ' + error.message));
  return { page, violations };
}
