// The appban web console: a single page over the admin API (docs/console.md). Every value shown is
// put into the page as text (textContent, never parsed as markup): app labels, tracker names and host names
// come from APKs, IPAs and devices, and are attacker-controlled.

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
let session = null; // the answer of GET /v1/session: user, role, csrf_token, ...

// el('td', {class: 'num'}, 'text', child...): an element whose string children become text nodes.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus();
}

function say(message, isError = false) {
  statusLine.replaceChildren(el('p', { class: isError ? 'error' : 'ok' }, message));
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// One call of the admin API (or /v1/session) with the session cookie; state changes carry the
// session's CSRF token. Answers the parsed JSON (null for 204); throws ApiError.
async function api(method, path, body, contentType = 'application/json') {
  const headers = {};
  if (method !== 'GET') {
    headers['X-CSRF-Token'] = session ? session.csrf_token : '';
    if (body !== undefined) headers['Content-Type'] = contentType;
  }
  const raw = body instanceof Blob;
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : (raw ? body : JSON.stringify(body)),
  });
  if (response.status === 204) return null;
  let json = null;
  try { json = await response.json(); } catch { json = null; }
  if (!response.ok) {
    const error = json && json.error ? json.error : { code: 'http_' + response.status, message: response.statusText };
    throw new ApiError(response.status, error.code, error.message);
  }
  return json;
}

function table(headings, rows, numeric = new Set()) {
  const head = el('tr', {}, ...headings.map((h) => el('th', { scope: 'col' }, h)));
  const body = rows.map((row) => el('tr', {}, ...row.map((cell, i) =>
    el('td', numeric.has(i) ? { class: 'num' } : {}, cell))));
  return el('table', {}, el('thead', {}, head), el('tbody', {}, ...body));
}

function link(href, text) { return el('a', { href }, text); }

// ---- Sign-in

function signInPage(message) {
  const input = el('input', { id: 'token', type: 'password', autocomplete: 'off', required: '' });
  const form = el('form', { id: 'signin' },
    el('h1', {}, 'Sign in'),
    el('p', {}, 'Paste an appban API token (or a token from your identity provider). It is exchanged once for a session; the console does not keep it.'),
    el('label', { for: 'token' }, 'Token'), input,
    el('div', {}, el('button', { type: 'submit' }, 'Sign in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      session = await api('POST', '/v1/session', { token: input.value });
      input.value = '';
      enterApp();
    } catch (error) {
      say('Sign-in refused: ' + error.message, true);
    }
  });
  document.getElementById('nav').hidden = true;
  document.getElementById('logout').hidden = true;
  document.getElementById('who').textContent = '';
  const providers = el('div', { id: 'providers' });
  form.insertBefore(providers, form.children[1]);
  show(form);
  if (message) say(message, true);
  showProviders(providers);
}

// The configured identity providers, each a link that starts the sign-in at the server
// (GET /console/sign-in?provider=NAME: authorization code + PKCE, docs/console.md), and the
// smart card when the server accepts client certificates (the browser presents the card's
// certificate on this connection; POST /v1/session turns it into a session).
async function showProviders(section) {
  let answer;
  try { answer = await api('GET', '/console/providers'); } catch { return; }
  const choices = answer.providers.map((provider) =>
    el('p', {}, el('a', { class: 'button', href: provider.sign_in_url }, 'Sign in with ' + provider.name)));
  if (answer.client_certificates) {
    const card = el('button', { type: 'button', id: 'card-sign-in' }, 'Sign in with your smart card');
    card.addEventListener('click', async () => {
      try {
        session = await api('POST', '/v1/session', { client_certificate: true });
        enterApp();
      } catch (error) {
        say('Sign-in refused: ' + error.message, true);
      }
    });
    choices.push(el('p', {}, card));
  }
  if (!choices.length) return;
  section.replaceChildren(...choices, el('p', {}, 'Or:'));
}

function enterApp() {
  document.getElementById('nav').hidden = false;
  document.getElementById('logout').hidden = false;
  document.getElementById('who').textContent = session.user.display_name + ' (' + session.role + ')';
  if (!location.hash || location.hash === '#/') location.hash = '#/overview';
  else route();
}

document.getElementById('logout').addEventListener('click', async () => {
  try { await api('DELETE', '/v1/session'); } catch (error) { say(error.message, true); }
  session = null;
  signInPage('Signed out.');
});

// ---- Pages

async function overviewPage() {
  const [compliance, rules, mdm, waivers] = await Promise.all([
    api('GET', '/v1/admin/compliance'), api('GET', '/v1/admin/rules?limit=1000'),
    api('GET', '/v1/admin/mdm'), api('GET', '/v1/admin/waivers?limit=1000')]);
  const weekAhead = Date.now() + 7 * 24 * 3600 * 1000;
  const expiring = waivers.waivers.filter((w) => !w.revoked_at && Date.parse(w.expires_at) > Date.now() &&
                                                 Date.parse(w.expires_at) <= weekAhead);
  const columns = ['targeted', 'compliant', 'violating', 'waived', 'pending', 'stale', 'cannot_enforce',
                   'not_applicable'];
  const ruleRows = compliance.rules.map((r) => [link('#/rules/' + encodeURIComponent(r.rule_id), r.rule_id),
    ...columns.map((c) => r[c])]);
  const totals = compliance.totals;
  const mine = rules.rules.filter((r) => r.state === 'draft' && r.proposed_by !== session.user.id &&
                                         r.proposed_by !== session.user.display_name);
  return [
    el('h1', {}, 'Overview'),
    el('p', { id: 'devices-total' }, 'Devices: ' + totals.devices + ', fully compliant: ' + totals.fully_compliant +
       ', violating a rule: ' + totals.violating_any),
    el('h2', {}, 'Published rules and their compliance'),
    table(['Rule', ...columns], ruleRows, new Set([1, 2, 3, 4, 5, 6, 7])),
    el('h2', {}, 'Devices by source and platform'),
    table(['Source', 'Platform', 'Devices'], mdm.devices_by_source.map((c) => [c.source, c.platform, c.devices]),
      new Set([2])),
    el('h2', {}, 'Waivers expiring within a week'),
    expiring.length ? table(['Waiver', 'Rule', 'Subject', 'Expires'],
      expiring.map((w) => [w.id, w.rule_id, w.subject_kind + ' ' + w.subject, w.expires_at])) : el('p', {}, 'None.'),
    el('h2', {}, 'Rules waiting for an approval (not proposed by you)'),
    mine.length ? table(['Rule', 'Title', 'Proposed by'],
      mine.map((r) => [link('#/rules/' + encodeURIComponent(r.id), r.id), r.title, r.proposed_by]))
      : el('p', {}, 'None.'),
  ];
}

async function rulesPage() {
  const answer = await api('GET', '/v1/admin/rules?limit=1000');
  return [el('h1', {}, 'Rules'),
    table(['Rule', 'Title', 'State', 'Action', 'Proposed by'], answer.rules.map((r) =>
      [link('#/rules/' + encodeURIComponent(r.id), r.id), r.title, r.state, r.action, r.proposed_by])),
    answer.next_cursor ? el('p', {}, 'More rules follow (the API pages them).') : null];
}

function explain(error) {
  if (error.code === 'two_person_rule') {
    return 'Refused by the two-person rule: the person who proposed a rule cannot also approve it. ' +
      'Another administrator must approve it. (' + error.message + ')';
  }
  if (error.status === 403) return 'Refused: ' + error.message;
  return error.message;
}

async function rulePage(id) {
  const rule = await api('GET', '/v1/admin/rules/' + encodeURIComponent(id));
  const actions = el('div', {});
  const act = (verb) => {
    const button = el('button', { type: 'button' }, verb[0].toUpperCase() + verb.slice(1));
    button.addEventListener('click', async () => {
      try {
        await api('POST', '/v1/admin/rules/' + encodeURIComponent(id) + '/' + verb, {});
        say('Rule ' + id + ': ' + verb + ' done.');
        route();
      } catch (error) {
        say(explain(error), true);
      }
    });
    actions.append(button);
  };
  if (rule.state === 'draft') act('approve');
  if (rule.state === 'approved') act('publish');
  if (rule.state === 'published' || rule.state === 'approved') act('revoke');
  const targets = (rule.targets || []).map((t) => [t.kind || '', t.value || JSON.stringify(t)]);
  return [
    el('h1', {}, 'Rule ', rule.id),
    el('p', {}, rule.title),
    table(['State', 'Action', 'Authority', 'Instrument', 'Proposed by'],
      [[rule.state, rule.action, rule.authority, rule.instrument, rule.proposed_by]]),
    el('h2', {}, 'Rationale'), el('p', {}, rule.rationale),
    el('h2', {}, 'Targets'), table(['Kind', 'Value'], targets),
    el('h2', {}, 'Evidence'),
    table(['APK SHA-256', 'Report'], (rule.assessments || []).map((a) => [a.apk_sha256, a.report])),
    el('h2', {}, 'History'),
    table(['To', 'By', 'At', 'Note'], (rule.history || []).map((h) => [h.to, h.by, h.at, h.note])),
    actions,
  ];
}

async function devicesPage() {
  const answer = await api('GET', '/v1/admin/devices?limit=100');
  return [el('h1', {}, 'Devices'), el('p', {}, answer.total + ' devices; the first page:'),
    table(['Device', 'Host name', 'Platform', 'Source', 'Last seen'], answer.devices.map((d) =>
      [link('#/devices/' + encodeURIComponent(d.id), d.id), d.hostname, d.platform, d.source, d.last_seen]))];
}

async function devicePage(id) {
  const device = await api('GET', '/v1/admin/devices/' + encodeURIComponent(id));
  return [el('h1', {}, 'Device ', id), el('pre', {}, JSON.stringify(device, null, 2))];
}

async function auditPage() {
  const answer = await api('GET', '/v1/admin/audit?limit=100');
  const result = el('p', { id: 'verify-result' });
  const verify = el('button', { type: 'button' }, 'Verify the chain now');
  verify.addEventListener('click', async () => {
    try {
      const v = await api('GET', '/v1/admin/audit/verify');
      result.replaceChildren(el('span', { class: v.ok ? 'ok' : 'error' },
        v.ok ? 'The audit chain verifies.' : 'The audit chain does NOT verify: ' + JSON.stringify(v)));
    } catch (error) { say(error.message, true); }
  });
  return [el('h1', {}, 'Audit log'), verify, result,
    table(['Seq', 'At', 'Actor', 'Action', 'Object'], answer.entries.map((e) =>
      [e.seq, e.at, e.actor, e.action, e.object]), new Set([0]))];
}

async function assessmentsPage() {
  const answer = await api('GET', '/v1/admin/assessments?limit=100');
  const file = el('input', { id: 'apk', type: 'file', accept: '.apk,.ipa' });
  const form = el('form', { id: 'upload' }, el('label', { for: 'apk' }, 'APK or IPA to assess'), file,
    el('div', {}, el('button', { type: 'submit' }, 'Upload and assess')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!file.files.length) { say('Choose a file first.', true); return; }
    try {
      say('Assessing…');
      const summary = await api('POST', '/v1/admin/assessments', file.files[0], 'application/octet-stream');
      location.hash = '#/assessments/' + summary.sha256;
    } catch (error) { say(error.message, true); }
  });
  return [el('h1', {}, 'Assessments'), form,
    table(['Package', 'Version', 'Score', 'Band', 'Uploaded by', 'At'], answer.assessments.map((a) =>
      [link('#/assessments/' + a.sha256, a.package), a.version, a.score, a.band, a.uploaded_by, a.uploaded_at]),
    new Set([2]))];
}

// The package (Android) or bundle id (iOS) a rule targets for this report's app.
function appTarget(app) {
  return app.platform === 'ios' ? { kind: 'ios', value: app.bundle_id || app.package }
    : { kind: 'android', value: app.package };
}

function proposeForm(sha, report) {
  const app = report.app || {};
  const target = appTarget(app);
  const id = el('input', { id: 'rule-id', type: 'text', required: '' });
  id.value = 'ban-' + String(target.value || 'app').toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 48);
  const title = el('input', { id: 'rule-title', type: 'text', required: '' });
  title.value = 'Ban ' + (app.label || app.package || sha);
  const rationale = el('textarea', { id: 'rule-rationale', required: '' });
  const authority = el('input', { id: 'rule-authority', type: 'text', required: '' });
  const form = el('form', { id: 'propose' }, el('h2', {}, 'Propose a ban from this assessment'),
    el('p', {}, 'The rule targets the ', target.kind, ' app ', target.value,
      ' and cites this assessment as evidence. Another administrator must approve it (two-person rule).'),
    el('label', { for: 'rule-id' }, 'Rule id'), id, el('label', { for: 'rule-title' }, 'Title'), title,
    el('label', { for: 'rule-rationale' }, 'Rationale'), rationale,
    el('label', { for: 'rule-authority' }, 'Authority'), authority,
    el('div', {}, el('button', { type: 'submit' }, 'Propose')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('POST', '/v1/admin/rules', {
        id: id.value, title: title.value, action: 'remove', rationale: rationale.value, authority: authority.value,
        targets: [target],
        assessments: [{ apk_sha256: sha, report: '/v1/admin/assessments/' + sha }],
      });
      location.hash = '#/rules/' + encodeURIComponent(id.value);
    } catch (error) { say(explain(error), true); }
  });
  return form;
}

async function assessmentPage(sha) {
  const report = await api('GET', '/v1/admin/assessments/' + encodeURIComponent(sha));
  const app = report.app || {};
  return [el('h1', {}, 'Assessment of ', app.label || app.package || sha),
    table(['Label', 'Package', 'Version', 'Score', 'Band'],
      [[app.label, app.package, app.version_name || app.version || '', report.score, report.band]]),
    appTarget(app).value ? proposeForm(sha, report) : null,
    el('h2', {}, 'The whole report'), el('pre', { id: 'report' }, JSON.stringify(report, null, 2))];
}

function exportsPage() {
  const item = (path, text) => el('li', {}, el('a', { href: path, download: '' }, text));
  return [el('h1', {}, 'Exports'),
    el('p', {}, 'CSV files for spreadsheets. Cells starting with =, +, - or @ are prefixed with an apostrophe so that no spreadsheet runs them as formulas.'),
    el('ul', {}, item('/v1/admin/exports/devices.csv', 'Devices'),
      item('/v1/admin/exports/compliance.csv', 'Compliance per rule'),
      item('/v1/admin/exports/audit.csv', 'Audit log'))];
}

const routes = [
  [/^#\/overview$/, overviewPage],
  [/^#\/rules$/, rulesPage],
  [/^#\/rules\/([^/]+)$/, rulePage],
  [/^#\/devices$/, devicesPage],
  [/^#\/devices\/([^/]+)$/, devicePage],
  [/^#\/audit$/, auditPage],
  [/^#\/assessments$/, assessmentsPage],
  [/^#\/assessments\/([0-9a-f]{64})$/, assessmentPage],
  [/^#\/exports$/, exportsPage],
];

async function route() {
  if (!session) return;
  try {
    // Every page view keeps the session alive (and notices an ended one).
    session = await api('GET', '/v1/session');
    for (const [pattern, page] of routes) {
      const match = pattern.exec(location.hash);
      if (match) {
        show(...(await page(...match.slice(1).map(decodeURIComponent))));
        return;
      }
    }
    show(el('h1', {}, 'Not found'), el('p', {}, 'No console page ', location.hash));
  } catch (error) {
    if (error.status === 401) { session = null; signInPage('Your session ended: ' + error.message); return; }
    say(error.message, true);
  }
}

window.addEventListener('hashchange', route);

(async () => {
  try {
    session = await api('GET', '/v1/session');
    enterApp();
  } catch {
    signInPage();
  }
})();
