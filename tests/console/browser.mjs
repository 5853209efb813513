// Drives Debian's chromium (headless, through puppeteer-core) against a running appban server:
// signs in to the web console with a pasted API token, checks that the overview shows the numbers
// the admin API gives, opens a rule, and checks that attacker-controlled text (a device's host name,
// a rule title) is shown as text and runs no script. Run by tests/console_test.cc:
//   node browser.mjs <server url> <admin API token> <rule id> <hostile text> <screenshot dir>
// Prints one line per check; exits 1 on the first failure.
import { check, launchChromium, watchedPage } from './chromium.mjs';

const [url, token, ruleId, hostile, shots] = process.argv.slice(2);
if (!shots) {
  console.error('usage: node browser.mjs <url> <token> <rule id> <hostile text> <screenshot dir>');
  process.exit(2);
}

async function api(path) {
  const response = await fetch(url + path, { headers: { authorization: 'Bearer ' + token } });
  if (!response.ok) throw new Error(path + ': HTTP ' + response.status);
  return response.json();
}

const browser = await launchChromium();
let failed = false;
try {
  const { page, violations } = await watchedPage(browser, url);

  await page.goto(url + '/', { waitUntil: 'networkidle0' });
  await page.waitForSelector('#token');
  await page.screenshot({ path: shots + '/console-sign-in.png' });
  await page.type('#token', token);
  await Promise.all([page.waitForSelector('#devices-total'), page.click('#signin button[type=submit]')]);
  const cookies = await browser.cookies();
  const session = cookies.find((c) => c.name === 'appban_session');
  check(session && session.httpOnly && session.secure && session.sameSite === 'Strict',
    'the session cookie is HttpOnly, Secure and SameSite=Strict');
  check(await page.evaluate(() => !document.cookie.includes('appban_session')), 'page scripts cannot read the session cookie');

  const compliance = await api('/v1/admin/compliance');
  const shown = await page.$eval('#devices-total', (node) => node.textContent);
  check(shown.includes('Devices: ' + compliance.totals.devices + ','),
    'the overview shows the API\'s device count (' + compliance.totals.devices + '): ' + shown);
  await page.screenshot({ path: shots + '/console-overview.png' });

  await page.goto(url + '/#/rules/' + encodeURIComponent(ruleId));
  await page.waitForFunction((id) => document.querySelector('main h1')?.textContent === 'Rule ' + id, {}, ruleId);
  const ruleText = await page.$eval('main', (node) => node.textContent);
  check(ruleText.includes(hostile), 'the rule page shows the hostile title as text');
  await page.screenshot({ path: shots + '/console-rule.png' });

  await page.goto(url + '/#/devices');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Devices');
  const cells = await page.$$eval('main td', (nodes) => nodes.map((n) => n.textContent));
  check(cells.includes(hostile), 'the devices page shows the hostile host name as text');
  check(await page.$$eval('main img', (nodes) => nodes.length) === 0, 'no element was made from the hostile text');
  check(await page.evaluate(() => window.__appbanXss === undefined), 'the hostile text ran no script');
  await page.screenshot({ path: shots + '/console-devices.png' });

  // Signing out clears the session: the API answers 401 to the page again.
  await page.click('#logout');
  await page.waitForSelector('#token');
  const after = await page.evaluate(async () => (await fetch('/v1/session')).status);
  check(after === 401, 'after signing out the session is gone');
  check(violations.length === 0, 'no Content-Security-Policy violation or script error: ' + violations.join(' | '));
} catch (error) {
  console.error(error.message);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
