// Drives Debian's chromium (headless, through puppeteer-core) through the web console's sign-in at
// a real identity provider (tests/oidc/provider.mjs): "Sign in with <provider>" on the console's
// sign-in page, the provider's own login and consent pages, back to the console's overview with
// the person's name shown; then signs out and cancels a sign-in at the provider, which the console
// refuses with a page naming access_denied. Run by tests/console_sign_in_test.cc:
//   node oidc-browser.mjs <server url> <provider name> <login> <display name> <screenshot dir>
// Prints one line per check; exits 1 on the first failure.
import { check, launchChromium, signInAtProvider, watchedPage } from './chromium.mjs';

const [url, provider, login, displayName, shots] = process.argv.slice(2);
if (!shots) {
  console.error('usage: node oidc-browser.mjs <url> <provider> <login> <display name> <screenshot dir>');
  process.exit(2);
}

const browser = await launchChromium();
let failed = false;
try {
  const { page, violations } = await watchedPage(browser, url);

  const label = 'Sign in with ' + provider;
  const providerLink = `::-p-xpath(//a[@class="button" and text()="${label}"])`;
  await page.goto(url + '/', { waitUntil: 'networkidle0' });
  await page.waitForSelector(providerLink);
  check(await page.$('#token') !== null, 'the token field is still offered beside the provider');
  await page.screenshot({ path: shots + '/console-sign-in-providers.png' });

  // At the provider: its own login page, then its consent page.
  await Promise.all([page.waitForNavigation(), page.click(providerLink)]);
  check(!page.url().startsWith(url), 'the console sent the browser to the provider: ' + new URL(page.url()).origin);
  await signInAtProvider(page, login);

  // Back at the console, signed in.
  await page.waitForFunction((name) => document.getElementById('who')?.textContent.includes(name), {}, displayName);
  await page.waitForSelector('#devices-total');
  check(page.url().startsWith(url + '/'), 'back at the console: ' + page.url());
  check(page.url().endsWith('#/overview'), 'the overview is shown');
  const who = await page.$eval('#who', (node) => node.textContent);
  check(who.includes(displayName), 'the console shows who signed in: ' + who);
  const cookies = await browser.cookies();
  const session = cookies.find((c) => c.name === 'appban_session');
  check(session && session.httpOnly && session.secure && session.sameSite === 'Strict',
    'the session cookie is HttpOnly, Secure and SameSite=Strict');
  check(!cookies.some((c) => c.name === 'appban_sign_in'), 'the sign-in cookie is gone');
  const me = await page.evaluate(async () => (await fetch('/v1/session', { cache: 'no-store' })).json());
  check(me.method === 'oidc' && me.user.display_name === displayName, 'the session is an OpenID Connect one: ' + me.method);
  await page.screenshot({ path: shots + '/console-overview-oidc.png' });

  await page.click('#logout');
  await page.waitForSelector(providerLink);
  check(violations.length === 0, 'no Content-Security-Policy violation or page error: ' + violations.join(' | '));

  // Someone else, in a fresh browser profile (no session at the provider), cancels at the provider.
  const other = await browser.createBrowserContext();
  const { page: second, violations: secondViolations } = await watchedPage(other, url);
  await second.goto(url + '/', { waitUntil: 'networkidle0' });
  await second.waitForSelector(providerLink);
  await Promise.all([second.waitForNavigation(), second.click(providerLink)]);
  await second.waitForSelector('input[name=login]');
  const cancel = '::-p-xpath(//a[contains(text(), "Cancel")])';
  await Promise.all([second.waitForNavigation({ waitUntil: 'networkidle0' }), second.click(cancel)]);
  await second.waitForSelector('#sign-in-message');
  const refusal = await second.$eval('#sign-in-message', (node) => node.textContent);
  check(second.url().startsWith(url + '/console/callback'), 'the provider sent the browser back to the callback');
  check(refusal.includes('access_denied'), 'a cancelled sign-in is refused with a clear message: ' + refusal);
  check(!(await other.cookies()).some((c) => c.name === 'appban_session'), 'no session after a cancelled sign-in');
  await second.screenshot({ path: shots + '/console-sign-in-refused.png' });
  check(secondViolations.length === 0, 'no CSP violation on the refusal page: ' + secondViolations.join(' | '));
} catch (error) {
  console.log(error.message);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
