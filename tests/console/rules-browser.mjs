// The two-person rule for a ban, in Debian's chromium (headless, through puppeteer-core), by two
// people signed in at a real identity provider (tests/oidc/provider.mjs), each in their own browser
// profile: alice uploads an APK on the Assessments page, proposes a ban from its assessment and is
// refused approving it herself (in words, on the page); bob finds it waiting on his overview,
// approves and publishes it; the bundle is issued (as `appban policy bundle publish` does: the
// console has no button for it); the overview shows every targeted device compliant once the
// simulated phones (tests/console_test.cc) have applied the bundle; bob downloads the devices and
// compliance CSVs from the Exports page. axe-core runs on each new page. Run by
// tests/console_test.cc:
//   node rules-browser.mjs <server url> <admin API token> <provider> <apk> <package> <devices> <screenshot dir>
// <devices>: how many enrolled devices hold <package>. Prints one line per check; exits 1 on the
// first failure.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, checkAccessibility, launchChromium, signInAtProvider, watchedPage } from './chromium.mjs';

const [url, token, provider, apk, appPackage, deviceCount, shots] = process.argv.slice(2);
if (!shots) {
  console.error('usage: node rules-browser.mjs <url> <token> <provider> <apk> <package> <devices> <screenshot dir>');
  process.exit(2);
}
const devices = Number(deviceCount);

async function api(path, method = 'GET') {
  const response = await fetch(url + path, { method, headers: { authorization: 'Bearer ' + token } });
  if (!response.ok) throw new Error(method + ' ' + path + ': HTTP ' + response.status + ' ' + await response.text());
  return response.json();
}

const providerLink = `::-p-xpath(//a[@class="button" and text()="Sign in with ${provider}"])`;
const button = (text) => `::-p-xpath(//main//button[text()="${text}"])`;
const statusIs = (page, pattern) => page.waitForFunction(
  (source) => new RegExp(source).test(document.getElementById('status').textContent), {}, pattern.source);
const heading = (page) => page.$eval('main h1', (node) => node.textContent);

// Signs `login` in at the provider (its login and consent pages) in `context`; answers the page on
// the overview and the person's user id.
async function signIn(context, login, name) {
  const watched = await watchedPage(context, url);
  const { page } = watched;
  await page.goto(url + '/', { waitUntil: 'networkidle0' });
  await page.waitForSelector(providerLink);
  await Promise.all([page.waitForNavigation(), page.click(providerLink)]);
  await signInAtProvider(page, login);
  await page.waitForFunction((n) => document.getElementById('who')?.textContent.includes(n), {}, name);
  await page.waitForSelector('#devices-total');
  const me = await page.evaluate(async () => (await fetch('/v1/session', { cache: 'no-store' })).json());
  check(me.method === 'oidc' && me.user.display_name === name, name + ' is signed in at ' + provider);
  return { ...watched, userId: me.user.id };
}

// The row whose first cell is `id` in the page's table that has a `column` heading, as
// {heading: cell text}; null when there is none. Found by headings, not position, so it holds
// when a page adds or moves a table.
function tableRow(page, column, id) {
  return page.$$eval('main table', (tables, wanted, key) => {
    for (const table of tables) {
      const columns = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
      const found = [...table.querySelectorAll('tbody tr')].find((tr) => tr.children[0].textContent === key);
      if (columns.includes(wanted) && found) return Object.fromEntries(columns.map((c, i) => [c, found.children[i].textContent]));
    }
    return null;
  }, column, id);
}

// One CSV file as rows of cells. The files checked here hold no quoted comma (ids, host names and
// numbers), so a split is enough.
function parseCsv(text) {
  const [header, ...rows] = text.split('\r\n').filter((line) => line !== '').map((line) => line.split(','));
  return rows.map((row) => Object.fromEntries(header.map((name, i) => [name, row[i]])));
}

const browser = await launchChromium();
const downloads = await mkdtemp(join(tmpdir(), 'appban-downloads-'));
let failed = false;
try {
  // Alice: uploads the APK and proposes a ban from its assessment.
  const alice = await signIn(browser, 'alice', 'Alice Martin');
  const page = alice.page;
  await page.goto(url + '/#/assessments');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Assessments');
  await (await page.$('#apk')).uploadFile(apk);
  await page.click('#upload button[type=submit]');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent.startsWith('Assessment of '),
    { timeout: 60000 });
  const sha = page.url().split('#/assessments/')[1];
  // The report's facts (a table of heading and value), its reasons and findings as the API has them.
  const shown = await page.$$eval('main table.facts tr', (rows) => Object.fromEntries(rows.map((r) =>
    [r.children[0].textContent, r.children[1].textContent])));
  check(shown.App === 'android ' + appPackage, 'the assessment report names the uploaded app\'s package: ' + shown.App);
  const stored = (await api('/v1/admin/assessments?limit=100')).assessments.find((a) => a.sha256 === sha);
  check(stored && shown.Risk.startsWith(stored.score + '/100') && shown.Risk.endsWith('verdict: ' + stored.band),
    'the report page shows the score and band the list gives: ' + shown.Risk);
  const report = await api('/v1/admin/assessments/' + sha);
  const reasons = await page.$$eval('#reasons > li', (items) => items.length);
  const findingRows = await page.$$eval('#findings tbody tr', (rows) => rows.map((r) => r.children[2].textContent));
  check(reasons === report.risk.reasons.length && findingRows.length === report.findings.length &&
    report.findings.every((f, i) => findingRows[i].includes(f.id)),
  'the report page lists every reason (' + reasons + ') and every finding (' + findingRows.length + ') of the report');
  const trackerNames = await page.$$eval('main h2', (heads) => heads.map((h) => h.textContent));
  check(trackerNames.includes('Trackers (' + report.trackers.length + ')'),
    'the report page counts the report\'s trackers: ' + report.trackers.length);
  check(await page.$('#propose') !== null, 'the report offers to propose a ban from it');
  await checkAccessibility(page, 'an assessment report and its proposal form');
  const ruleId = await page.$eval('#rule-id', (node) => node.value);
  const offered = await page.$$eval('#rule-targets li', (items) => items.map((i) =>
    [i.textContent.trim(), i.querySelector('input').checked]));
  check(offered.length >= 1 && offered[0][0].startsWith('android: ' + appPackage) && offered[0][1] &&
    offered.slice(1).every(([, ticked]) => !ticked),
  'the proposal targets the package, ticked; the signer is offered unticked: ' + JSON.stringify(offered));
  await page.type('#rule-rationale', 'The assessment found trackers and sensitive API calls.');
  await page.type('#rule-authority', 'Chief Information Officer');
  await page.click('#propose button[type=submit]');
  await page.waitForFunction((id) => document.querySelector('main h1')?.textContent === 'Rule ' + id, {}, ruleId);
  await statusIs(page, /proposed as a draft/);
  let rule = await api('/v1/admin/rules/' + encodeURIComponent(ruleId));
  check(rule.state === 'draft' && rule.proposed_by === alice.userId, 'the rule is a draft proposed by alice');
  check(rule.assessments.some((a) => a.apk_sha256 === sha), 'the rule cites the assessment as evidence');

  // Her own approval is refused, and the page says why.
  await page.click(button('Approve'));
  await statusIs(page, /two-person rule/);
  const refusal = await page.$eval('#status', (node) => node.textContent);
  check(refusal.includes('cannot also approve it') && refusal.includes('Another administrator must approve it'),
    'approving one\'s own rule is refused and explained on the page: ' + refusal);
  check((await api('/v1/admin/rules/' + encodeURIComponent(ruleId))).state === 'draft', 'the refusal approved nothing');
  await page.screenshot({ path: shots + '/console-rule-self-approval.png' });

  // Bob, in another browser profile: the rule waits for him on the overview; he approves and
  // publishes it.
  const other = await browser.createBrowserContext({ downloadBehavior: { policy: 'allow', downloadPath: downloads } });
  const bob = await signIn(other, 'bob', 'Bob Tremblay');
  const second = bob.page;
  const waiting = `main a[href="#/rules/${encodeURIComponent(ruleId)}"]`;
  check(await second.$(waiting) !== null, 'bob\'s overview lists the rule as waiting for his approval');
  await second.click(waiting);
  await second.waitForFunction((id) => document.querySelector('main h1')?.textContent === 'Rule ' + id, {}, ruleId);
  await second.click(button('Approve'));
  await statusIs(second, /approve done/);
  await second.waitForSelector(button('Publish'));
  await second.click(button('Publish'));
  await statusIs(second, /publish done/);
  rule = await api('/v1/admin/rules/' + encodeURIComponent(ruleId));
  const approval = rule.history.find((h) => h.to === 'approved');
  check(rule.state === 'published' && approval && approval.by === bob.userId,
    'the rule is published, approved by bob: ' + JSON.stringify(rule.history.map((h) => [h.to, h.by])));

  // Devices get the rule with the next bundle: the rule's page says so and issues it.
  await second.waitForSelector('#issue-bundle');
  check((await second.$eval('main', (node) => node.textContent)).includes('Devices get it with the next bundle'),
    'the published rule\'s page says no device has it until a bundle is issued');
  await second.click('#issue-bundle');
  await statusIs(second, /Bundle version \d+ issued/);
  const issued = await api('/v1/admin/bundles/latest');
  check(issued.version > 0 && issued.rules.includes(ruleId), 'bundle version ' + issued.version + ' issued, holding the rule');

  // The overview, computed again ("Compute now": the page otherwise shows the summary the server
  // keeps) until the phones have applied it: every targeted device compliant.
  await second.goto(url + '/#/overview');
  const deadline = Date.now() + 30000;
  let row = null;
  for (;;) {
    await second.waitForSelector('#devices-total');
    row = await tableRow(second, 'compliant', ruleId);
    if ((row && row.compliant === String(devices)) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
    await second.$eval('#computed-at', (node) => { node.dataset.before = 'yes'; });
    await second.click('#compute-now');
    await second.waitForFunction(() => {
      const line = document.querySelector('#computed-at');
      return line && !line.dataset.before;
    });
    check((await second.$eval('#computed-at', (node) => node.textContent)).includes('(just now)'),
      '"Compute now" shows numbers computed at that moment');
  }
  // A plain reload now shows the summary that computation left, saying how old it is.
  await second.reload();
  await second.waitForSelector('#computed-at');
  const computedAt = await second.$eval('#computed-at', (node) => node.textContent);
  check(computedAt.includes('kept by the server'), 'the reloaded overview says its numbers were kept: ' + computedAt);
  check((await tableRow(second, 'compliant', ruleId))?.compliant === row?.compliant,
    'the kept summary holds the numbers just computed');
  const compliance = (await api('/v1/admin/compliance')).rules.find((r) => r.rule_id === ruleId);
  check(row && row.targeted === String(devices) && row.compliant === String(devices),
    'the overview shows all ' + devices + ' targeted devices compliant: ' + JSON.stringify(row));
  check(compliance.targeted === devices && compliance.compliant === devices && compliance.violating === 0,
    'the API counts the same: ' + JSON.stringify(compliance));
  // The chart of time from publish to compliance draws the rule (a line and its legend entry), and
  // the table under it says every targeted device complied within a day.
  const legend = await second.$$eval('figure ul.legend li', (items) => items.map((i) => i.textContent.trim()));
  check(legend.includes(ruleId) && await second.$$eval('figure svg polyline', (lines) => lines.length) === legend.length,
    'the overview\'s chart draws a line for the rule: ' + legend.join(', '));
  const within = (await tableRow(second, 'Within 1 d', ruleId))?.['Within 1 d'];
  check(within === '100.0 %', 'the time-to-compliance table says all of them complied within a day: ' + within);
  await second.evaluate(() => window.scrollTo(0, 0)); // focusing <main> scrolled the bar out of view
  await second.screenshot({ path: shots + '/console-overview-compliant.png' });

  // One phone's page: its status with the rule, and the removal among its events.
  const phone = (await api('/v1/admin/devices?limit=1')).devices[0];
  await second.goto(url + '/#/devices/' + encodeURIComponent(phone.id));
  await second.waitForFunction((id) => document.querySelector('main h1')?.textContent === 'Device ' + id, {}, phone.id);
  const ruleRow = await tableRow(second, 'Status', ruleId);
  const stand = (await api('/v1/admin/compliance/devices/' + encodeURIComponent(phone.id))).rules
    .find((r) => r.rule_id === ruleId);
  check(ruleRow && ruleRow.Status === stand.status && ['compliant', 'remediated'].includes(stand.status),
    'the device page shows the phone\'s status with the rule as the API does: ' + JSON.stringify(ruleRow));
  const eventCells = await second.$$eval('main td', (cells) => cells.map((c) => c.textContent));
  check(eventCells.includes(appPackage), 'the device page lists the removal of the app among its events');
  await checkAccessibility(second, 'a device');
  await second.screenshot({ path: shots + '/console-device.png', fullPage: true });

  // Exports: the page, and the two CSV files as the browser downloads them.
  await second.click('#nav a[href="#/exports"]');
  await second.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Exports');
  check(await heading(second) === 'Exports', 'the Exports page is shown');
  await checkAccessibility(second, 'the exports');
  await second.screenshot({ path: shots + '/console-exports.png' });
  const download = async (text, file) => {
    await second.click(`::-p-xpath(//main//a[text()="${text}"])`);
    const until = Date.now() + 10000;
    while (!(await readdir(downloads)).includes(file)) {
      if (Date.now() > until) throw new Error('FAILED: "' + text + '" downloaded no ' + file);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return parseCsv(await readFile(join(downloads, file), 'utf8'));
  };
  const deviceRows = await download('Devices', 'appban-devices.csv');
  const enrolled = (await api('/v1/admin/devices?limit=100')).devices;
  check(deviceRows.length === enrolled.length && enrolled.every((d) => deviceRows.some((r) => r.id === d.id &&
    r.hostname === d.hostname && r.applied_version === String(issued.version))),
  'the devices CSV names every device with the bundle it applied: ' + deviceRows.map((r) => r.hostname).join(', '));
  const ruleRows = (await download('Compliance per rule', 'appban-compliance.csv')).filter((r) => r.rule_id === ruleId);
  check(ruleRows.length === 1 && ruleRows[0].targeted === String(compliance.targeted) &&
    ruleRows[0].compliant === String(compliance.compliant) && ruleRows[0].remediated === String(compliance.remediated),
  'the compliance CSV has the rule\'s row with the API\'s numbers: ' + JSON.stringify(ruleRows[0]));

  check(alice.violations.length === 0 && bob.violations.length === 0,
    'no Content-Security-Policy violation or script error: ' + [...alice.violations, ...bob.violations].join(' | '));
} catch (error) {
  console.log(error.message);
  failed = true;
} finally {
  await browser.close();
  await rm(downloads, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
