// Drives Debian's chromium (headless, through puppeteer-core) against a running appban server:
// signs in to the web console with a pasted API token, checks that the overview shows the numbers
// the admin API gives, opens a rule, and checks that attacker-controlled text (a device's host name,
// a rule title) is shown as text and runs no script; requests a waiver and sees its self-approval
// refused by the two-person rule; adopts a catalog decision as a draft rule; and runs axe-core on
// every page it visits (no serious or critical violation). Run by tests/console_test.cc:
//   node browser.mjs <server url> <admin API token> <rule id> <hostile text> <screenshot dir>
// Prints one line per check; exits 1 on the first failure.
import { check, checkAccessibility, launchChromium, watchedPage } from './chromium.mjs';

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
  // Opens a console page and waits for its heading.
  const visit = async (hash, heading) => {
    await page.goto(url + '/' + hash);
    await page.waitForFunction((h) => document.querySelector('main h1')?.textContent === h, {}, heading);
  };

  await page.goto(url + '/', { waitUntil: 'networkidle0' });
  await page.waitForSelector('#token');
  await checkAccessibility(page, 'the sign-in page');
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
  await checkAccessibility(page, 'the overview');
  await page.screenshot({ path: shots + '/console-overview.png' });

  await visit('#/rules', 'Rules');
  // The filter: by text (a rule's id, title, authority or target) and by state, over every rule.
  const listed = (await api('/v1/admin/rules?limit=1000')).rules;
  const count = () => page.$eval('#rule-count', (node) => node.textContent);
  const rows = () => page.$$eval('#rule-list tbody tr', (nodes) => nodes.length);
  check((await count()) === listed.length + ' of ' + listed.length + ' rules' && (await rows()) === listed.length,
    'the rules page lists every rule: ' + (await count()));
  await page.type('#rule-text', ruleId.toUpperCase());
  check((await count()).startsWith('1 of ') && (await rows()) === 1, 'typing a rule\'s id keeps only it: ' + (await count()));
  const own = listed.find((r) => r.id === ruleId).state;
  await page.select('#rule-state', own === 'revoked' ? 'draft' : 'revoked');
  check((await count()).startsWith('0 of ') && (await rows()) === 0, 'and a state it is not in keeps none');
  await page.select('#rule-state', own);
  check((await rows()) === 1, 'its own state keeps it');
  await checkAccessibility(page, 'the rules');

  await page.goto(url + '/#/rules/' + encodeURIComponent(ruleId));
  await page.waitForFunction((id) => document.querySelector('main h1')?.textContent === 'Rule ' + id, {}, ruleId);
  const ruleText = await page.$eval('main', (node) => node.textContent);
  check(ruleText.includes(hostile), 'the rule page shows the hostile title as text');
  await checkAccessibility(page, 'a rule');
  await page.screenshot({ path: shots + '/console-rule.png' });

  await page.goto(url + '/#/devices');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Devices');
  const cells = await page.$$eval('main td', (nodes) => nodes.map((n) => n.textContent));
  check(cells.includes(hostile), 'the devices page shows the hostile host name as text');
  check(await page.$$eval('main img', (nodes) => nodes.length) === 0, 'no element was made from the hostile text');
  check(await page.evaluate(() => window.__appbanXss === undefined), 'the hostile text ran no script');
  await checkAccessibility(page, 'the devices');

  // The device search (tests/console_test.cc enrols kiosk-lobby, KIOSK-hall and desk_7%, and
  // checks in their inventories). Each search waits for its own summary line.
  const search = async (fields, summary) => {
    for (const name of ['hostname', 'app', 'id']) {
      await page.$eval('#search-' + name, (node, value) => { node.value = value; }, fields[name] || '');
    }
    await page.$eval('#device-results-summary', (node) => { node.textContent = ''; });
    await page.click('#device-search button[type=submit]');
    await page.waitForFunction((s) => document.getElementById('device-results-summary').textContent === s, {}, summary);
    return (await page.$$eval('#device-results tbody tr', (rows) => rows.map((r) => r.children[1].textContent))).sort();
  };
  const byHost = await search({ hostname: 'kiosk-' }, '2 matching devices shown.');
  check(JSON.stringify(byHost) === JSON.stringify(['KIOSK-hall', 'kiosk-lobby']),
    'searching by host name shows the two kiosks, in either case, and nothing else: ' + byHost.join(', '));
  await checkAccessibility(page, 'the device search\'s results');
  await page.screenshot({ path: shots + '/console-devices.png' });
  const byApp = await search({ app: 'com.tencent.mm' }, '2 matching devices shown.');
  check(JSON.stringify(byApp) === JSON.stringify(['KIOSK-hall', 'desk_7%']),
    'searching by installed app shows the devices that have it: ' + byApp.join(', '));
  const both = await search({ hostname: 'KIOSK', app: 'com.tencent.mm' }, '1 matching device shown.');
  check(JSON.stringify(both) === JSON.stringify(['KIOSK-hall']), 'a host name and an app together: ' + both.join(', '));
  const literal = await search({ hostname: 'desk_7%' }, '1 matching device shown.');
  const wildcards = await search({ hostname: '%' }, 'No device matches.');
  check(literal.length === 1 && wildcards.length === 0, 'the wildcards % and _ in a search are literal');
  const hostileFound = await search({ hostname: '<img' }, '1 matching device shown.');
  check(JSON.stringify(hostileFound) === JSON.stringify([hostile]) && await page.$$eval('main img', (n) => n.length) === 0,
    'a search result shows the hostile host name as text');

  // Waivers: a request waits for a second person; the requester's own approval is refused in words.
  const device = (await api('/v1/admin/devices?limit=1')).devices[0].id;
  await visit('#/waivers', 'Waivers');
  await page.type('#waiver-id', 'w-browser');
  await page.type('#waiver-rule', ruleId);
  await page.select('#waiver-kind', 'device');
  await page.type('#waiver-subject', device);
  await page.type('#waiver-justification', 'the liaison office needs it for a week');
  const expiry = new Date(Date.now() + 3 * 24 * 3600 * 1000).toISOString().slice(0, 10);
  await page.$eval('#waiver-expires', (node, value) => { node.value = value; }, expiry);
  await page.click('#waiver-request button[type=submit]');
  await page.waitForFunction(() => /requested/.test(document.getElementById('status').textContent));
  const requested = await page.$eval('#status', (node) => node.textContent);
  check(requested.includes('w-browser') && requested.includes('1 more person'),
    'the waiver request is shown as waiting for one more person: ' + requested);
  await page.waitForSelector('button[aria-label="Approve waiver w-browser"]');
  await page.click('button[aria-label="Approve waiver w-browser"]');
  await page.waitForFunction(() => /two-person rule/.test(document.getElementById('status').textContent));
  check((await page.$eval('#status', (node) => node.textContent)).includes('cannot also approve it'),
    'approving one\'s own waiver request is refused and explained on the page');
  check(!(await api('/v1/admin/waivers')).waivers.some((w) => w.id === 'w-browser'), 'a refused approval granted nothing');
  // The granted waiver (tests/console_test.cc grants one expiring in three days): flagged, then revoked.
  const grantedRow = await page.$$eval('#waivers tbody tr', (rows) => rows.map((r) => r.textContent)
    .find((text) => text.startsWith('w-granted')));
  check(grantedRow && grantedRow.includes('active, expires within a week') && grantedRow.includes('field test'),
    'the granted waiver is shown with its reason and as expiring within a week: ' + grantedRow);
  await checkAccessibility(page, 'the waivers');
  await page.screenshot({ path: shots + '/console-waivers.png', fullPage: true });
  await page.click('button[aria-label="Revoke waiver w-granted"]');
  await page.waitForSelector('#revoke-reason');
  await checkAccessibility(page, 'the waivers\' revoke form');
  await page.type('#revoke-reason', 'the replacement app is approved');
  await page.click('#waiver-revoke button[type=submit]');
  await page.waitForFunction(() => /revoked\./.test(document.getElementById('status').textContent));
  const revoked = (await api('/v1/admin/waivers')).waivers.find((w) => w.id === 'w-granted');
  check(revoked && revoked.revoked_at && !revoked.active, 'Revoke revoked the waiver');
  await page.waitForFunction(() => !document.querySelector('#waiver-revoke'));
  const revokedRow = await page.$$eval('#waivers tbody tr', (rows) => rows.map((r) => r.textContent)
    .find((text) => text.startsWith('w-granted')));
  check(revokedRow && revokedRow.includes('revoked 20') && !revokedRow.includes('Revoke'),
    'the waivers page shows it revoked, with no Revoke button left: ' + revokedRow);

  // The catalog side by side with our rules; a decision we do not ban adopted as a draft. The
  // waivers' status message does not follow to another page.
  check((await page.$eval('#status', (node) => node.textContent)).includes('revoked'), 'the status says it was revoked');
  await page.click('#nav a[href="#/catalog"]');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Catalog of government app bans');
  check(await page.$eval('#status', (node) => node.textContent) === '', 'going to another page clears the status message');
  const tiktokRow = await page.$$eval('#catalog tbody tr', (rows) => rows.map((r) => r.textContent)
    .find((text) => text.startsWith('ca-tiktok-2023')));
  check(tiktokRow && tiktokRow.includes('Not banned here') && tiktokRow.includes('Canada'),
    'the catalog shows Canada\'s TikTok decision as not banned here');
  const hrefs = await page.$$eval('#catalog a', (links) => links.map((a) => a.getAttribute('href')));
  check(hrefs.length > 0 && hrefs.every((h) => h.startsWith('https://')), 'the catalog links only to https sources');
  await checkAccessibility(page, 'the catalog');
  await page.screenshot({ path: shots + '/console-catalog.png' });
  await page.click('button[aria-label="Adopt as a draft: ca-tiktok-2023"]');
  await page.waitForSelector('#propose');
  const rationale = await page.$eval('#rule-rationale', (node) => node.value);
  check(rationale.includes('catalog entry ca-tiktok-2023') && rationale.includes('https://'),
    'the adoption form cites the catalog entry and its source');
  check((await page.$eval('#rule-authority', (node) => node.value)).length > 0, 'the adoption form names the authority');
  await checkAccessibility(page, 'the catalog\'s adoption form');
  await page.click('#propose button[type=submit]');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Rule ca-tiktok-2023');
  const adopted = await api('/v1/admin/rules/ca-tiktok-2023');
  check(adopted.state === 'draft' && adopted.source === 'ca-tiktok-2023' && adopted.targets.length > 1,
    'the adopted decision is a draft rule with the catalog\'s targets');

  await visit('#/assessments', 'Assessments');
  await checkAccessibility(page, 'the assessments');
  await page.screenshot({ path: shots + '/console-assessments.png' });

  await visit('#/audit', 'Audit log');
  const seqs = await page.$$eval('#audit tbody tr', (rows) => rows.map((r) => Number(r.children[0].textContent)));
  const latest = (await api('/v1/admin/audit?order=newest&limit=1')).entries[0].seq;
  check(seqs.length > 1 && seqs[0] === latest && seqs.every((seq, i) => i === 0 || seq < seqs[i - 1]),
    'the audit page shows the latest entry first: ' + seqs.slice(0, 3).join(', '));
  await page.click('main button');
  await page.waitForFunction(() => document.getElementById('verify-result').textContent !== '');
  check((await page.$eval('#verify-result', (node) => node.textContent)) === 'The audit chain verifies.',
    'the audit page verifies the chain');
  await checkAccessibility(page, 'the audit log');
  await page.screenshot({ path: shots + '/console-audit.png' });

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
