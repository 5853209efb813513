// What the console's browser tests share: Debian's chromium launched headless through
// puppeteer-core, a page that collects Content-Security-Policy violations and script errors, and
// a check that prints "ok: …" or throws, and axe-core's accessibility checks of what a page shows.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import puppeteer from 'puppeteer-core';

const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

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

// Runs axe-core on what `page` shows now and throws, listing them, on any violation of impact
// "serious" or "critical" (minor and moderate ones are printed, not failed). axe is put in through
// the DevTools protocol, which the page's Content-Security-Policy does not apply to, so the page
// keeps its policy while it is checked.
export async function checkAccessibility(page, what) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + (n.failureSummary ? ': ' + n.failureSummary.replace(/\s+/g, ' ') : '')),
    }));
  });
  const describe = (v) => v.impact + ' ' + v.id + ' (' + v.help + '): ' + v.nodes.join(' | ');
  for (const v of violations.filter((x) => x.impact !== 'serious' && x.impact !== 'critical')) {
    console.log('note: axe on ' + what + ': ' + describe(v));
  }
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(serious.length === 0, 'axe-core finds no serious or critical violation on ' + what +
    (serious.length ? ':\n  ' + serious.map(describe).join('\n  ') : ''));
}

// At the test provider (tests/oidc/provider.mjs), where the console sent the page: its login page
// (any password for a known login), then its consent page, which sends the browser back.
export async function signInAtProvider(page, login) {
  await page.waitForSelector('input[name=login]');
  await page.type('input[name=login]', login);
  await page.type('input[name=password]', 'any password');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await page.waitForSelector('button[type=submit]');
  await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('button[type=submit]')]);
}
