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

// Shows a page's nodes in <main>; a null or undefined (a part the page leaves out) is skipped.
function show(...nodes) {
  main.replaceChildren(...nodes.filter((node) => node !== null && node !== undefined));
  main.focus();
}

function say(message, isError = false) {
  statusLine.replaceChildren(el('p', { class: isError ? 'error' : 'ok' }, message));
}

// A message about what an action did is kept when the action itself moves to another page; any
// other navigation clears the status line, so an old message is never read as the new page's.
let messageForNextPage = null;
function sayOnNextPage(message) { messageForNextPage = message; }
function onNavigation() {
  statusLine.replaceChildren();
  if (messageForNextPage !== null) say(messageForNextPage);
  messageForNextPage = null;
  route();
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

// GET `path`, or null when the server answers 404 (a thing that does not exist yet: no bundle
// issued, a rule no bundle holds); any other error is thrown.
async function getOrNull(path) {
  try {
    return await api('GET', path);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

function table(headings, rows, numeric = new Set()) {
  const head = el('tr', {}, ...headings.map((h) => el('th', { scope: 'col' }, h)));
  const body = rows.map((row) => el('tr', {}, ...row.map((cell, i) =>
    el('td', numeric.has(i) ? { class: 'num' } : {}, cell))));
  return el('table', {}, el('thead', {}, head), el('tbody', {}, ...body));
}

function link(href, text) { return el('a', { href }, text); }

// ---- Charts (SVG made node by node, like el(): no markup is parsed, and presentation attributes
// are not inline styles, so the Content-Security-Policy holds)

const svgNamespace = 'http://www.w3.org/2000/svg';
function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(svgNamespace, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// 90 s -> "1.5 min": the units an officer reads a delay in.
function duration(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const units = [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']];
  for (const [size, unit] of units) {
    if (seconds >= size) {
      const value = seconds / size;
      return (Number.isInteger(value) ? value : value.toFixed(1)) + ' ' + unit;
    }
  }
  return seconds + ' s';
}

// The devices of a rule compliant within `seconds` of its publish, read off the API's curve
// (cumulative counts at fixed marks, ending at the first mark past the slowest device).
function compliedWithin(time, seconds) {
  let devices = 0;
  for (const point of time.curve || []) if (point.seconds <= seconds) devices = point.devices;
  return devices;
}

function percent(part, whole) { return whole > 0 ? (100 * part / whole).toFixed(1) + ' %' : '–'; }

// Colours with at least 3:1 contrast on white (WCAG 1.4.11), each with its own dash pattern so the
// lines stay apart for a reader who does not tell the colours apart.
const lineStyles = [['#1f4e9c', ''], ['#b03a00', '8 4'], ['#2e7d32', '2 3'], ['#7b1fa2', '10 3 2 3'],
  ['#6d5a00', '4 4'], ['#c2185b', '12 6']];

// A line per rule: the share of its targeted devices compliant against the time since its publish,
// on a logarithmic time axis. `rules` are the compliance API's rule entries. The figure's numbers
// are in the table the caller shows beside it; the chart is the picture of them.
function complianceChart(rules, caption) {
  const width = 640, height = 260, left = 52, right = 16, top = 12, bottom = 40;
  let lastMark = 60;
  for (const rule of rules) {
    const curve = rule.time_to_compliance.curve || [];
    if (curve.length) lastMark = Math.max(lastMark, curve[curve.length - 1].seconds);
  }
  const span = Math.log10(lastMark);
  const x = (seconds) => left + (width - left - right) * Math.log10(Math.max(1, seconds)) / span;
  const y = (share) => top + (height - top - bottom) * (1 - share);
  const figure = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': caption,
    class: 'chart' });
  for (const share of [0, 0.25, 0.5, 0.75, 1]) {
    figure.append(svg('line', { x1: left, x2: width - right, y1: y(share), y2: y(share), stroke: '#ccc' }),
      svg('text', { x: left - 6, y: y(share) + 4, 'text-anchor': 'end', 'font-size': 11 }, (share * 100) + ' %'));
  }
  for (const tick of [1, 10, 60, 600, 3600, 21600, 86400, 604800, 2592000].filter((t) => t <= lastMark)) {
    figure.append(svg('line', { x1: x(tick), x2: x(tick), y1: top, y2: height - bottom, stroke: '#e4e4e4' }),
      svg('text', { x: x(tick), y: height - bottom + 16, 'text-anchor': 'middle', 'font-size': 11 }, duration(tick)));
  }
  figure.append(svg('text', { x: left + (width - left - right) / 2, y: height - 6, 'text-anchor': 'middle',
    'font-size': 12 }, 'time since publish (logarithmic)'));
  const legend = el('ul', { class: 'legend' });
  rules.forEach((rule, i) => {
    const [colour, dashes] = lineStyles[i % lineStyles.length];
    const curve = rule.time_to_compliance.curve || [];
    const share = (p) => (rule.targeted ? p.devices / rule.targeted : 0);
    const points = curve.map((p) => [x(p.seconds), y(share(p))]);
    // The count holds after the curve's last mark (no device complied later), so the line runs on
    // to the axis's end; a dot marks each measured mark, so a curve of one mark still shows.
    if (curve.length) points.push([x(lastMark), y(share(curve[curve.length - 1]))]);
    const line = { fill: 'none', stroke: colour, 'stroke-width': 2.5 };
    if (dashes) line['stroke-dasharray'] = dashes;
    if (points.length) {
      figure.append(svg('polyline', { ...line, points: points.map(([px, py]) => px.toFixed(1) + ',' + py.toFixed(1))
        .join(' ') }));
    }
    for (const [px, py] of points.slice(0, curve.length)) {
      figure.append(svg('circle', { cx: px.toFixed(1), cy: py.toFixed(1), r: 3, fill: colour }));
    }
    const sample = svg('svg', { width: 36, height: 12, 'aria-hidden': 'true' },
      svg('line', { ...line, x1: 0, x2: 36, y1: 6, y2: 6 }));
    legend.append(el('li', {}, sample, ' ', rule.rule_id));
  });
  return el('figure', {}, figure, legend, el('figcaption', {}, caption));
}

// The numbers behind the chart, one row a rule.
function timeToComplianceTable(rules) {
  return table(['Rule', 'First published', 'Targeted', 'Compliant', 'Median', '95th percentile', 'Slowest',
    'Within 1 min', 'Within 1 h', 'Within 1 d'],
  rules.map((r) => {
    const t = r.time_to_compliance;
    return [link('#/rules/' + encodeURIComponent(r.rule_id), r.rule_id), r.first_published_at, r.targeted,
      t.samples, duration(t.median_seconds), duration(t.p95_seconds), duration(t.max_seconds),
      percent(compliedWithin(t, 60), r.targeted), percent(compliedWithin(t, 3600), r.targeted),
      percent(compliedWithin(t, 86400), r.targeted)];
  }), new Set([2, 3, 4, 5, 6, 7, 8, 9]));
}

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

// The overview reads the compliance summary the server keeps (computed again every
// console.compliance_refresh_seconds, docs/console.md) when it is at most this old; "Compute now"
// asks for numbers computed at that moment, which takes seconds on a large fleet.
const kOverviewSummaryMaxAgeSeconds = 300;
let overviewComputeNow = false;

// When the overview's numbers were computed, and the button that computes them now.
function computedAtLine(compliance) {
  const computeNow = el('button', { type: 'button', id: 'compute-now' }, 'Compute now');
  computeNow.addEventListener('click', () => {
    overviewComputeNow = true;
    computeNow.disabled = true;
    computeNow.textContent = 'Computing…';
    route();
  });
  const age = compliance.age_seconds || 0;
  return el('p', { id: 'computed-at' }, 'Numbers computed at ' + compliance.generated_at +
    (compliance.from_stored_summary ? ' (' + duration(age) + ' ago, kept by the server). ' : ' (just now). '), computeNow);
}

async function overviewPage() {
  const query = overviewComputeNow ? '' : '?max_age_seconds=' + kOverviewSummaryMaxAgeSeconds;
  overviewComputeNow = false;
  const [compliance, rules, mdm, waivers] = await Promise.all([
    api('GET', '/v1/admin/compliance' + query), api('GET', '/v1/admin/rules?limit=1000'),
    api('GET', '/v1/admin/mdm'), api('GET', '/v1/admin/waivers?limit=1000')]);
  const weekAhead = Date.now() + 7 * 24 * 3600 * 1000;
  const expiring = waivers.waivers.filter((w) => !w.revoked_at && Date.parse(w.expires_at) > Date.now() &&
                                                 Date.parse(w.expires_at) <= weekAhead);
  const columns = ['targeted', 'compliant', 'violating', 'waived', 'pending', 'stale', 'cannot_enforce',
                   'not_applicable'];
  const ruleRows = compliance.rules.map((r) => [link('#/rules/' + encodeURIComponent(r.rule_id), r.rule_id),
    ...columns.map((c) => r[c])]);
  const totals = compliance.totals;
  // The chart draws the rules published last (a line each); the table under it lists every rule.
  const latest = compliance.rules.filter((r) => r.targeted > 0)
    .sort((a, b) => b.first_published_at.localeCompare(a.first_published_at)).slice(0, lineStyles.length);
  const mine = rules.rules.filter((r) => r.state === 'draft' && r.proposed_by !== session.user.id &&
                                         r.proposed_by !== session.user.display_name);
  return [
    el('h1', {}, 'Overview'),
    computedAtLine(compliance),
    el('p', { id: 'devices-total' }, 'Devices: ' + totals.devices + ', fully compliant: ' + totals.fully_compliant +
       ', violating a rule: ' + totals.violating_any),
    el('h2', {}, 'Published rules and their compliance'),
    table(['Rule', ...columns], ruleRows, new Set([1, 2, 3, 4, 5, 6, 7, 8])),
    el('h2', {}, 'Time from publish to compliance'),
    latest.length ? complianceChart(latest, 'Share of targeted devices compliant against the time since the ' +
      'rule was first published: the ' + (latest.length === 1 ? 'rule' : latest.length + ' rules') +
      ' published last.') : el('p', {}, 'No published rule targets a device yet.'),
    latest.length ? timeToComplianceTable(compliance.rules) : null,
    el('h2', {}, 'Devices by source and platform'),
    table(['Source', 'Platform', 'Devices'], mdm.devices_by_source.map((c) => [c.source, c.platform, c.devices]),
      new Set([2])),
    el('h2', {}, 'Waivers expiring within a week'),
    expiring.length ? table(['Waiver', 'Rule', 'Subject', 'Expires'],
      expiring.map((w) => [w.id, w.rule_id, w.subject_kind + ' ' + w.subject, w.expires_at])) : el('p', {}, 'None.'),
    el('p', {}, link('#/waivers', 'All waivers and the requests waiting for approval')),
    el('h2', {}, 'Rules waiting for an approval (not proposed by you)'),
    mine.length ? table(['Rule', 'Title', 'Proposed by'],
      mine.map((r) => [link('#/rules/' + encodeURIComponent(r.id), r.id), r.title, r.proposed_by]))
      : el('p', {}, 'None.'),
  ];
}


// Publishing a rule decides it; devices get it with the next signed bundle (POST /v1/admin/publish,
// admin): every published rule and the waivers active now.
function issueBundleButton() {
  const button = el('button', { type: 'button', id: 'issue-bundle' }, 'Issue a new bundle');
  button.addEventListener('click', async () => {
    try {
      const bundle = await api('POST', '/v1/admin/publish', {});
      say('Bundle version ' + bundle.version + ' issued with ' + (bundle.rules || []).length +
        ' rules; devices are receiving it.');
      route();
    } catch (error) {
      say(error.status === 409 ? 'Someone else issued a bundle at the same moment; reload to see it.'
        : explain(error, 'a bundle'), true);
    }
  });
  return button;
}

// What devices enforce against what is decided: the latest bundle, the published rules it lacks
// and the rules it holds that are no longer published.
function bundleSection(bundle, rules) {
  const published = rules.filter((r) => r.state === 'published').map((r) => r.id);
  const held = new Set(bundle && bundle.rules ? bundle.rules : []);
  const missing = published.filter((id) => !held.has(id));
  const withdrawn = [...held].filter((id) => !published.includes(id));
  const parts = [el('h2', {}, 'Policy bundle')];
  parts.push(el('p', { id: 'bundle-latest' }, bundle ? 'Devices enforce bundle version ' + bundle.version +
    ', issued ' + bundle.issued_at + (bundle.not_after ? ', valid until ' + bundle.not_after : '') + ', with ' +
    held.size + (held.size === 1 ? ' rule.' : ' rules.') : 'No bundle has been issued: devices enforce nothing yet.'));
  if (missing.length || withdrawn.length || !bundle) {
    if (missing.length) {
      parts.push(el('p', { class: 'warn', id: 'bundle-missing' }, 'Published but not in it yet: ',
        ...missing.flatMap((id, i) => [i ? ', ' : '', link('#/rules/' + encodeURIComponent(id), id)]), '.'));
    }
    if (withdrawn.length) {
      parts.push(el('p', { class: 'warn' }, 'In it but no longer published (devices still enforce them): ' +
        withdrawn.join(', ') + '.'));
    }
    parts.push(issueBundleButton());
  } else {
    parts.push(el('p', {}, 'It holds every published rule.'));
  }
  return parts;
}

// Every rule, following the API's cursor: a department has hundreds of rules, not millions, and
// the filter below works on the whole list. Ten pages at most, said when there are more.
const kMaxRulePages = 10;
async function allRules() {
  const rules = [];
  let cursor = null;
  for (let page = 0; page < kMaxRulePages; ++page) {
    const answer = await api('GET', '/v1/admin/rules?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    rules.push(...answer.rules);
    cursor = answer.next_cursor;
    if (!cursor) return { rules, complete: true };
  }
  return { rules, complete: false };
}

// The rules whose state is `state` ('' for any) and whose id, title, authority or a target's value
// contains `text` (either case).
function filterRules(rules, state, text) {
  const needle = text.trim().toLowerCase();
  return rules.filter((r) => (!state || r.state === state) && (!needle ||
    [r.id, r.title, r.authority, ...(r.targets || []).map((t) => t.kind + ':' + t.value)]
      .some((field) => (field || '').toLowerCase().includes(needle))));
}

async function rulesPage() {
  const [list, bundle] = await Promise.all([allRules(), getOrNull('/v1/admin/bundles/latest')]);
  const state = el('select', { id: 'rule-state' }, el('option', { value: '' }, 'any state'),
    ...['draft', 'approved', 'published', 'revoked'].map((s) => el('option', { value: s }, s)));
  const text = el('input', { id: 'rule-text', type: 'search', autocomplete: 'off', maxlength: '256' });
  const shown = el('div', { id: 'rule-list' });
  const render = () => {
    const rules = filterRules(list.rules, state.value, text.value);
    shown.replaceChildren(
      el('p', { id: 'rule-count', role: 'status' }, rules.length + ' of ' + list.rules.length + ' rules'),
      table(['Rule', 'Title', 'State', 'Action', 'Proposed by'], rules.map((r) =>
        [link('#/rules/' + encodeURIComponent(r.id), r.id), r.title, r.state, r.action, r.proposed_by])));
  };
  state.addEventListener('change', render);
  text.addEventListener('input', render);
  render();
  const filter = el('form', { id: 'rule-filter', role: 'search', 'aria-labelledby': 'rule-filter-heading' },
    el('h2', { id: 'rule-filter-heading' }, 'Every rule'),
    el('label', { for: 'rule-state' }, 'State'), state,
    el('label', { for: 'rule-text' }, 'Id, title, authority or target contains'), text);
  filter.addEventListener('submit', (event) => event.preventDefault());
  return [el('h1', {}, 'Rules'), ...bundleSection(bundle, list.rules), filter, shown,
    list.complete ? null : el('p', {}, 'Only the first ' + list.rules.length + ' rules are listed.')];
}

// A refusal in words: the two-person rule, a missing role, a request the server found wrong.
function explain(error, what = 'a rule') {
  if (error.code === 'two_person_rule') {
    return 'Refused by the two-person rule: the person who proposed ' + what + ' cannot also approve it. ' +
      'Another administrator must approve it. (' + error.message + ')';
  }
  if (error.code === 'csrf') return 'Refused: the page\'s session token was not accepted; reload the page. (' + error.message + ')';
  if (error.status === 403) return 'Refused: your role does not allow this. (' + error.message + ')';
  if (error.status === 400) return 'Refused: the server found the request wrong: ' + error.message;
  if (error.status === 404) return 'Not found: ' + error.message;
  if (error.status === 409) return 'Refused: ' + error.message;
  return error.message;
}

// One rule's compliance from the latest bundle, or null when the bundle does not hold the rule (a
// draft, an approved rule not yet published, a revoked one).
function ruleCompliance(id) {
  return getOrNull('/v1/admin/compliance/rules/' + encodeURIComponent(id) + '?limit=0');
}

function ruleComplianceSection(answer, rule) {
  if (!answer) {
    const notYet = el('p', { class: rule.state === 'published' ? 'warn' : '' },
      'The latest bundle does not hold this rule: no device enforces it.' + (rule.state === 'published'
        ? ' Devices get it with the next bundle.' : ''));
    return rule.state === 'published' ? [notYet, issueBundleButton()] : [notYet];
  }
  const r = answer.rule;
  const columns = ['targeted', 'compliant', 'remediated', 'violating', 'waived', 'mismatch', 'pending', 'stale',
    'cannot_enforce', 'not_applicable'];
  return [
    table(columns, [columns.map((c) => r[c])], new Set(columns.map((_, i) => i))),
    r.targeted > 0 ? complianceChart([r], 'Share of the ' + r.targeted + ' targeted devices compliant against the ' +
      'time since the rule was first published (' + r.first_published_at + ').') : null,
    r.targeted > 0 ? timeToComplianceTable([r]) : null,
  ];
}

async function rulePage(id) {
  const [rule, compliance] = await Promise.all([api('GET', '/v1/admin/rules/' + encodeURIComponent(id)),
    ruleCompliance(id)]);
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
    el('h2', {}, 'Compliance'),
    ...ruleComplianceSection(compliance, rule),
  ];
}

// GET /v1/admin/devices with the search's filters (only those given) and the page's cursor.
function devicesPath(search, cursor) {
  const params = new URLSearchParams({ limit: '100' });
  for (const [name, value] of Object.entries(search)) if (value) params.set(name, value);
  if (cursor) params.set('cursor', cursor);
  return '/v1/admin/devices?' + params.toString();
}

// The devices, or those a search finds: the server filters (by index) and pages them, 100 a page,
// "Show more devices" for the next; the page never loads the whole fleet.
async function devicesPage() {
  const inputs = {
    hostname: el('input', { id: 'search-hostname', type: 'search', autocomplete: 'off', maxlength: '253' }),
    app: el('input', { id: 'search-app', type: 'search', autocomplete: 'off', maxlength: '256' }),
    id: el('input', { id: 'search-id', type: 'search', autocomplete: 'off', maxlength: '64' }),
  };
  const form = el('form', { id: 'device-search', role: 'search', 'aria-labelledby': 'device-search-heading' },
    el('h2', { id: 'device-search-heading' }, 'Search devices'),
    el('p', {}, 'Every field given must match. Devices record no user: search by host name, app or id.'),
    ...field('search-hostname', 'Host name starts with (either case)', inputs.hostname),
    ...field('search-app', 'App installed (the whole package, bundle or Flatpak id)', inputs.app),
    ...field('search-id', 'Device id starts with', inputs.id),
    el('div', {}, el('button', { type: 'submit' }, 'Search'), ' ', el('button', { type: 'reset' }, 'Show all')));
  const summary = el('p', { id: 'device-results-summary', 'aria-live': 'polite' });
  const body = el('tbody', {});
  const headings = ['Device', 'Host name', 'Platform', 'Source', 'Last seen'];
  const results = el('table', { id: 'device-results', 'aria-describedby': 'device-results-summary' },
    el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', { scope: 'col' }, h)))), body);
  const more = el('button', { type: 'button', id: 'more-devices', hidden: '' }, 'Show more devices');
  let search = {};
  let cursor = null;
  let shown = 0;
  const load = async (fromStart) => {
    const answer = await api('GET', devicesPath(search, fromStart ? null : cursor));
    if (fromStart) { body.replaceChildren(); shown = 0; }
    for (const d of answer.devices) {
      body.append(el('tr', {}, ...[link('#/devices/' + encodeURIComponent(d.id), d.id), d.hostname, d.platform,
        d.source, d.last_seen].map((c) => el('td', {}, c))));
    }
    shown += answer.devices.length;
    cursor = answer.next_cursor;
    more.hidden = !cursor;
    const searching = Object.values(search).some((value) => value);
    if (searching && !shown) summary.textContent = 'No device matches.';
    else if (searching) {
      summary.textContent = shown + (shown === 1 ? ' matching device shown' : ' matching devices shown') +
        (cursor ? '; more follow.' : '.');
    }
    else summary.textContent = shown + ' of ' + answer.total + ' devices shown' + (cursor ? '; more follow.' : '.');
  };
  const reload = async () => {
    try { await load(true); } catch (error) { say(explain(error), true); }
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    search = { hostname: inputs.hostname.value.trim(), app: inputs.app.value.trim(), id: inputs.id.value.trim() };
    statusLine.replaceChildren();
    reload();
  });
  form.addEventListener('reset', () => { search = {}; reload(); });
  more.addEventListener('click', async () => {
    try { await load(false); } catch (error) { say(explain(error), true); }
  });
  await load(true);
  return [el('h1', {}, 'Devices'), form, summary, results, more];
}

// A row of facts: a heading cell and its value.
function facts(rows) {
  return el('table', { class: 'facts' }, el('tbody', {}, ...rows.filter((r) => r).map(([name, value]) =>
    el('tr', {}, el('th', { scope: 'row' }, name), el('td', {}, value === null || value === undefined ? '' : value)))));
}

function ruleLink(id) { return id ? link('#/rules/' + encodeURIComponent(id), id) : ''; }

// One device: who it is, how it stands with each rule, what it has installed and what the latest
// bundle decides for each app (the apps a rule acts on first), and its recent events.
async function devicePage(id) {
  const path = encodeURIComponent(id);
  const [device, compliance] = await Promise.all([api('GET', '/v1/admin/devices/' + path),
    api('GET', '/v1/admin/compliance/devices/' + path)]);
  const mdm = device.mdm;
  const about = facts([
    ['Host name', device.hostname], ['Platform', device.platform], ['Source', device.source],
    ['Agent version', device.agent_version], ['Groups', (device.groups || []).join(', ') || 'none'],
    ['Enrolled', device.enrolled_at], ['Last seen', device.last_seen || 'never'],
    ['Bundle applied', device.applied_version + (device.bundle_version !== undefined
      ? ' (latest published: ' + device.bundle_version + ')' : '')],
    device.rules_hash_mismatch ? ['Rules hash', 'does not match the bundle it claims: ' +
      JSON.stringify(device.rules_hash_mismatch)] : null,
    ['Inventory reported', device.inventory_at || 'never'],
    device.cannot_enforce ? ['Cannot enforce', device.cannot_enforce] : null,
    mdm ? ['MDM', mdm.connector + ' ' + mdm.id + (mdm.gone_at ? ', gone from the MDM ' + mdm.gone_at : '')] : null,
    device.revoked_at ? ['Revoked', device.revoked_at + ' by ' + device.revoked_by] : null,
  ]);
  const rules = table(['Rule', 'Status', 'Action', 'Since', 'Compliant at', 'Time to compliance'],
    compliance.rules.filter((r) => r.status !== 'not_targeted').map((r) => [ruleLink(r.rule_id), r.status,
      r.action, r.since || '', r.compliant_at || '', duration(r.time_to_compliance_seconds)]), new Set([5]));
  // Apps a rule acts on first, then the rest by id, as the API lists them.
  const decisions = (device.decisions || []).slice().sort((a, b) =>
    (a.decision === 'allowed') - (b.decision === 'allowed'));
  const acted = decisions.filter((d) => d.decision !== 'allowed').length;
  const apps = device.decisions
    ? [el('p', { id: 'device-apps-summary' }, decisions.length + (decisions.length === 1 ? ' app' : ' apps') +
        ' installed; the latest bundle acts on ' + acted + ' of them.'),
      table(['Platform', 'App', 'Version', 'Decision', 'Rule', 'Matched by', 'Waiver'], decisions.map((d) =>
        [d.platform, d.id, d.version, d.decision, ruleLink(d.rule), d.matched_by || '',
          d.waiver ? d.waiver + ' until ' + d.waived_until : '']))]
    : [el('p', {}, device.inventory_error ? 'The stored inventory cannot be read: ' + device.inventory_error
      : 'The device has not reported an inventory yet.')];
  const events = device.events.length
    ? table(['#', 'At', 'Kind', 'App', 'Rule', 'Detail'], device.events.map((e) =>
      [e.seq, e.at, e.kind, e.app, ruleLink(e.rule_id), e.detail]), new Set([0]))
    : el('p', {}, 'No events.');
  return [el('h1', {}, 'Device ', id), about,
    el('h2', {}, 'Rules'), compliance.rules.some((r) => r.status !== 'not_targeted') ? rules
      : el('p', {}, 'No published rule targets this device.'),
    el('h2', {}, 'Installed apps and what the latest bundle decides'), ...apps,
    el('h2', {}, 'Recent events (newest first)'), events,
    el('details', {}, el('summary', {}, 'The API\'s answer (JSON)'), el('pre', {}, JSON.stringify(device, null, 2)))];
}

// The latest entries first (order=newest), 100 a page, "Show older entries" for the next.
async function auditPage() {
  const answer = await api('GET', '/v1/admin/audit?order=newest&limit=100');
  const result = el('p', { id: 'verify-result' });
  const verify = el('button', { type: 'button' }, 'Verify the chain now');
  verify.addEventListener('click', async () => {
    try {
      const v = await api('GET', '/v1/admin/audit/verify');
      result.replaceChildren(el('span', { class: v.ok ? 'ok' : 'error' },
        v.ok ? 'The audit chain verifies.' : 'The audit chain does NOT verify: ' + JSON.stringify(v)));
    } catch (error) { say(error.message, true); }
  });
  const rows = (entries) => entries.map((e) => el('tr', {}, ...[e.seq, e.at, e.actor, e.action, e.object].map((c, i) =>
    el('td', i === 0 ? { class: 'num' } : {}, c))));
  const body = el('tbody', {}, ...rows(answer.entries));
  const headings = ['Seq', 'At', 'Actor', 'Action', 'Object'];
  const older = el('button', { type: 'button', id: 'older-audit', hidden: '' }, 'Show older entries');
  let cursor = answer.next_cursor;
  older.hidden = !cursor;
  older.addEventListener('click', async () => {
    try {
      const next = await api('GET', '/v1/admin/audit?order=newest&limit=100&cursor=' + encodeURIComponent(cursor));
      body.append(...rows(next.entries));
      cursor = next.next_cursor;
      older.hidden = !cursor;
    } catch (error) { say(error.message, true); }
  });
  return [el('h1', {}, 'Audit log'), verify, result, el('p', {}, 'The latest entries first.'),
    el('table', { id: 'audit' }, el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', { scope: 'col' }, h)))), body),
    older];
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

// The targets a ban from this report can name: the app itself (chosen), and, for the analyst to
// choose, its signing certificate or Apple team (every app that publisher signs) and its vendor
// when the server holds a vendor record of that name (a vendor target names a record).
function reportTargets(report, vendorNames) {
  const app = report.app || {};
  const publisher = report.publisher || {};
  const choices = [{ target: appTarget(app), chosen: true, why: 'this app' }];
  if (app.platform === 'ios' && app.team_id) {
    choices.push({ target: { kind: 'apple-team', value: app.team_id }, chosen: false,
      why: 'every iOS app of this Apple team' });
  } else if (app.platform !== 'ios' && publisher.signer_sha256) {
    choices.push({ target: { kind: 'android-signer', value: publisher.signer_sha256 }, chosen: false,
      why: 'every Android app signed with this certificate (' + (publisher.organization || 'no organisation') + ')' });
  }
  if (publisher.vendor && vendorNames.has(publisher.vendor)) {
    choices.push({ target: { kind: 'vendor', value: publisher.vendor }, chosen: false,
      why: 'every identifier the vendor record lists' });
  }
  return choices.filter((c) => c.target.value);
}

// The rule-proposal form (POST /v1/admin/rules): id, title, rationale and authority to edit; the
// rest of `rule` (evidence, source...) is sent as it is. `choices` are the targets offered, each
// with a box ({target, chosen, why}); `intro` says where it comes from.
function ruleForm(heading, intro, rule, choices) {
  const id = el('input', { id: 'rule-id', type: 'text', required: '' });
  id.value = rule.id || '';
  const title = el('input', { id: 'rule-title', type: 'text', required: '' });
  title.value = rule.title || '';
  const rationale = el('textarea', { id: 'rule-rationale', required: '' });
  rationale.value = rule.rationale || '';
  const authority = el('input', { id: 'rule-authority', type: 'text', required: '' });
  authority.value = rule.authority || '';
  const boxes = choices.map((choice, i) => {
    const box = el('input', { type: 'checkbox', id: 'rule-target-' + i });
    box.checked = choice.chosen;
    return box;
  });
  const targets = el('ul', { id: 'rule-targets' }, ...choices.map((c, i) => {
    const t = c.target;
    const text = t.kind + ': ' + t.value + (t.unverified ? ' (unverified: the source only believes it)' : '') +
      (c.why ? ' — ' + c.why : '');
    return el('li', {}, boxes[i], ' ', el('label', { for: 'rule-target-' + i, class: 'inline' }, text));
  }));
  const form = el('form', { id: 'propose', 'aria-labelledby': 'propose-heading' },
    el('h2', { id: 'propose-heading', tabindex: '-1' }, heading), intro,
    el('h3', {}, 'Targets'), targets,
    el('label', { for: 'rule-id' }, 'Rule id'), id, el('label', { for: 'rule-title' }, 'Title'), title,
    el('label', { for: 'rule-rationale' }, 'Rationale'), rationale,
    el('label', { for: 'rule-authority' }, 'Authority'), authority,
    el('div', {}, el('button', { type: 'submit' }, 'Propose')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = choices.filter((_, i) => boxes[i].checked).map((c) => c.target);
    if (!chosen.length) { say('Choose at least one target.', true); return; }
    try {
      await api('POST', '/v1/admin/rules', {
        ...rule, targets: chosen, id: id.value, title: title.value, rationale: rationale.value, authority: authority.value,
      });
      sayOnNextPage('Rule ' + id.value + ' proposed as a draft; another administrator must approve it.');
      location.hash = '#/rules/' + encodeURIComponent(id.value);
    } catch (error) { say(explain(error), true); }
  });
  return form;
}

function proposeForm(sha, report, vendorNames) {
  const app = report.app || {};
  const target = appTarget(app);
  return ruleForm('Propose a ban from this assessment',
    el('p', {}, 'The rule cites this assessment as evidence. Another administrator must approve it ' +
      '(two-person rule).'),
    {
      id: 'ban-' + String(target.value || 'app').toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 48),
      title: 'Ban ' + (app.label || app.package || sha), action: 'remove', rationale: '', authority: '',
      assessments: [{ apk_sha256: sha, report: '/v1/admin/assessments/' + sha }],
    }, reportTargets(report, vendorNames));
}

// Every vendor record's name (a few pages at most: records are per publisher).
async function vendorNames() {
  const names = new Set();
  let cursor = '';
  for (let page = 0; page < 20; ++page) {
    const answer = await api('GET', '/v1/admin/vendors?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    for (const v of answer.vendors) names.add(v.name);
    if (!answer.next_cursor) break;
    cursor = answer.next_cursor;
  }
  return names;
}

// A long list shown up to `limit` items, saying how many more the report holds.
function capped(items, limit, render = (x) => x) {
  const shown = items.slice(0, limit).map((item) => el('li', {}, render(item)));
  if (items.length > limit) shown.push(el('li', {}, '… and ' + (items.length - limit) + ' more (in the JSON below)'));
  return el('ul', {}, ...shown);
}

function evidenceText(e) {
  return e.kind + ': ' + e.value + (e.location ? ' (' + e.location + ')' : '') + (e.note ? ' — ' + e.note : '');
}

// The report laid out as the HTML report lays it out: what the score is made of (each reason
// linked to its findings), the findings with their evidence, trackers, capabilities requested and
// used, endpoints, the publisher, anomalies. Every value came from the uploaded file: text only.
async function assessmentPage(sha) {
  const [report, vendors] = await Promise.all([api('GET', '/v1/admin/assessments/' + encodeURIComponent(sha)),
    vendorNames()]);
  const app = report.app || {};
  const risk = report.risk || {};
  const file = report.file || {};
  const publisher = report.publisher || {};
  const findings = report.findings || [];
  const findingIndex = new Map(findings.map((f, i) => [f.id, i]));
  // In-page links to a finding: the page's address is its route, so the link scrolls by script.
  const findingLink = (id) => {
    const index = findingIndex.get(id);
    if (index === undefined) return id;
    const a = el('a', { href: location.hash }, id);
    a.addEventListener('click', (event) => {
      event.preventDefault();
      const row = document.getElementById('finding-' + index);
      row.scrollIntoView();
      row.focus();
    });
    return a;
  };
  const reasons = el('ol', { id: 'reasons' }, ...(risk.reasons || []).map((r) => el('li', {}, r.text,
    r.category === 'floor' ? ' (a floor: the score is at least this level)' : ' (+' + r.points + ')',
    r.findings && r.findings.length ? el('ul', {}, ...r.findings.map((f) => el('li', {}, findingLink(f)))) : null)));
  const findingRows = findings.map((f, i) => el('tr', { id: 'finding-' + i, tabindex: '-1' },
    el('td', {}, f.severity), el('td', {}, f.category), el('td', {}, el('strong', {}, f.title), el('br'), f.id),
    el('td', {}, f.description || ''), el('td', {}, capped(f.evidence || [], 12, evidenceText))));
  const findingsTable = el('table', { id: 'findings' },
    el('thead', {}, el('tr', {}, ...['Severity', 'Category', 'Finding', 'Why it matters', 'Evidence'].map((h) =>
      el('th', { scope: 'col' }, h)))), el('tbody', {}, ...findingRows));
  const trackers = report.trackers || [];
  const capabilities = (report.capabilities || []).filter((c) => c.requested || c.used);
  const endpoints = report.endpoints || {};
  const trackerHosts = endpoints.tracker_hosts || {};
  return [el('h1', {}, 'Assessment of ', app.label || app.package || sha),
    facts([
      ['Label', app.label], ['App', (app.platform || 'android') + ' ' + (app.package || app.bundle_id || '')],
      ['Version', app.version_name || app.version || app.short_version || ''],
      ['Risk', risk.score + '/100, ' + risk.level + ', verdict: ' + risk.verdict],
      ['Risk model', risk.model], ['File', (file.path || '') + ', ' + file.size + ' bytes'],
      ['SHA-256', file.sha256 || sha], ['Tracker signatures', report.tracker_database || ''],
    ]),
    el('h2', {}, 'Why this score'), (risk.reasons || []).length ? reasons : el('p', {}, 'Nothing raised the score.'),
    proposeForm(sha, report, vendors),
    el('h2', {}, 'Findings (' + findings.length + ')'), findings.length ? findingsTable : el('p', {}, 'None.'),
    el('h2', {}, 'Trackers (' + trackers.length + ')'),
    trackers.length ? table(['Tracker', 'Classes matched', 'Examples', 'Hosts'], trackers.map((t) =>
      [t.name, t.class_count, capped(t.classes || [], 5), (t.hosts || []).join(', ')]), new Set([1]))
      : el('p', {}, 'No known tracker SDK found.'),
    el('h2', {}, 'Capabilities requested and used'),
    capabilities.length ? table(['Capability', 'Requested', 'Used', 'Permissions', 'Evidence of use'],
      capabilities.map((c) => [c.title, c.requested ? 'yes' : 'no', c.used ? 'yes' : 'no',
        (c.permissions || []).join(', '), capped(c.evidence || [], 5, evidenceText)]))
      : el('p', {}, 'No sensitive capability requested or used.'),
    el('h2', {}, 'Endpoints'),
    el('p', {}, (endpoints.hosts || []).length + ' hosts, ' + (endpoints.urls || []).length + ' URLs, ' +
      (endpoints.ips || []).length + ' IP addresses found in the code and resources.'),
    capped(endpoints.hosts || [], 100, (h) => h + (trackerHosts[h] ? ' (tracker: ' + trackerHosts[h] + ')' : '')),
    el('h2', {}, 'Publisher'),
    facts([['Organisation', publisher.organization || 'none in the certificate'], ['Country', publisher.country],
      [app.platform === 'ios' ? 'Apple team' : 'Signing certificate (SHA-256)',
        app.platform === 'ios' ? app.team_id || 'unsigned' : publisher.signer_sha256 || 'unsigned'],
      publisher.debug_certificate ? ['Debug certificate', 'yes: not a release signature'] : null,
      publisher.v1_only ? ['Signature scheme', 'v1 (JAR) only'] : null,
      ['Vendor', publisher.vendor ? publisher.vendor + ' (' + publisher.vendor_country + ', matched by ' +
        publisher.matched_by + ')' : 'not in the vendor registry']]),
    el('h2', {}, 'Anomalies (' + (report.anomalies || []).length + ')'),
    (report.anomalies || []).length ? capped(report.anomalies, 50, (a) => a.code + (a.where ? ' in ' + a.where : '') +
      ': ' + a.detail) : el('p', {}, 'None.'),
    el('details', {}, el('summary', {}, 'The whole report (JSON)'),
      el('pre', { id: 'report' }, JSON.stringify(report, null, 2)))];
}

// ---- Waivers

const weekMs = 7 * 24 * 3600 * 1000;

// Where a waiver stands now, in words.
function waiverStanding(w, person) {
  if (w.revoked_at) return 'revoked ' + w.revoked_at + (w.revoked_by ? ' by ' + person(w.revoked_by) : '');
  const expires = Date.parse(w.expires_at);
  if (expires <= Date.now()) return 'expired';
  if (expires <= Date.now() + weekMs) return 'active, expires within a week';
  return 'active';
}

function field(id, text, input) { return [el('label', { for: id }, text), input]; }

// A request for a waiver (POST /v1/admin/waivers, the CLI's `policy waivers add`): it becomes a
// change that other people approve (two-person rule) before it exempts anyone.
function waiverForm() {
  const id = el('input', { id: 'waiver-id', type: 'text', required: '', autocomplete: 'off' });
  const rule = el('input', { id: 'waiver-rule', type: 'text', required: '', autocomplete: 'off' });
  const kind = el('select', { id: 'waiver-kind' }, el('option', { value: 'device' }, 'Device'),
    el('option', { value: 'group' }, 'Group'));
  const subject = el('input', { id: 'waiver-subject', type: 'text', required: '', autocomplete: 'off' });
  const justification = el('textarea', { id: 'waiver-justification', required: '' });
  const expires = el('input', { id: 'waiver-expires', type: 'date', required: '' });
  const form = el('form', { id: 'waiver-request', 'aria-labelledby': 'waiver-request-heading' },
    el('h2', { id: 'waiver-request-heading' }, 'Request a waiver'),
    el('p', {}, 'Exempts one device or group from one rule until the expiry. It takes effect once another ' +
      'administrator approves it (two-person rule).'),
    ...field('waiver-id', 'Waiver id', id), ...field('waiver-rule', 'Rule id', rule),
    ...field('waiver-kind', 'Exempted', kind), ...field('waiver-subject', 'Device id or group name', subject),
    ...field('waiver-justification', 'Reason', justification),
    ...field('waiver-expires', 'Expires on (00:00 UTC of that day)', expires),
    el('div', {}, el('button', { type: 'submit' }, 'Request the waiver')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const answer = await api('POST', '/v1/admin/waivers', {
        id: id.value, rule_id: rule.value, subject_kind: kind.value, subject: subject.value,
        justification: justification.value, expires_at: expires.value + 'T00:00:00Z',
      });
      if (answer && answer.change && answer.change.state === 'pending') {
        say('Waiver ' + id.value + ' requested (change ' + answer.change.id + '): it takes effect once ' +
          answer.change.needs + ' more person approves it.');
      } else {
        say('Waiver ' + id.value + ' granted.');
      }
      route();
    } catch (error) { say(explain(error, 'a waiver request'), true); }
  });
  return form;
}

function pendingWaivers(changes) {
  const pending = changes.filter((c) => c.kind === 'waiver.add' && c.state === 'pending');
  if (!pending.length) return el('p', { id: 'waiver-requests' }, 'None.');
  const rows = pending.map((c) => {
    const w = c.payload || {};
    const approve = el('button', { type: 'button', 'aria-label': 'Approve waiver ' + w.id }, 'Approve');
    approve.addEventListener('click', async () => {
      try {
        const answer = await api('POST', '/v1/admin/changes/' + encodeURIComponent(c.id) + '/approve', {});
        say(answer && answer.result ? 'Waiver ' + w.id + ' granted.' : 'Your approval of waiver ' + w.id +
          ' is recorded; it needs ' + answer.change.needs + ' more.');
        route();
      } catch (error) { say(explain(error, 'a waiver request'), true); }
    });
    return [w.id, link('#/rules/' + encodeURIComponent(w.rule_id), w.rule_id), w.subject_kind + ' ' + w.subject,
      w.justification, c.proposer_name || c.proposed_by, w.expires_at, String(c.needs), approve];
  });
  return table(['Waiver', 'Rule', 'Exempted', 'Reason', 'Requested by', 'Expires', 'Approvals needed', 'Action'],
    rows, new Set([6]));
}

// Revoking a waiver tightens enforcement again: one administrator may, with a reason.
function revokeWaiverForm(w, area) {
  const reason = el('input', { id: 'revoke-reason', type: 'text', required: '', autocomplete: 'off' });
  const form = el('form', { id: 'waiver-revoke', 'aria-labelledby': 'waiver-revoke-heading' },
    el('h2', { id: 'waiver-revoke-heading', tabindex: '-1' }, 'Revoke waiver ', w.id),
    el('p', {}, 'Rule ', w.rule_id, ' applies to ', w.subject_kind, ' ', w.subject, ' again at its next check-in.'),
    ...field('revoke-reason', 'Reason for revoking', reason),
    el('div', {}, el('button', { type: 'submit' }, 'Revoke')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('POST', '/v1/admin/waivers/' + encodeURIComponent(w.id) + '/revoke', { reason: reason.value });
      say('Waiver ' + w.id + ' revoked.');
      route();
    } catch (error) { say(explain(error, 'a waiver'), true); }
  });
  area.replaceChildren(form);
  form.querySelector('h2').focus();
}

// Every change, page after page: the API has no filter by state, and a request waiting for
// approval may sit behind the first thousand changes.
async function allChanges() {
  const changes = [];
  let cursor = null;
  do {
    const answer = await api('GET', '/v1/admin/changes?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    changes.push(...answer.changes);
    cursor = answer.next_cursor;
  } while (cursor);
  return changes;
}

async function waiversPage() {
  const [first, changes, users] = await Promise.all([api('GET', '/v1/admin/waivers?limit=100'),
    allChanges(), api('GET', '/v1/admin/users?limit=1000')]);
  // Waivers name people by user id; show their names where the first page of users has them.
  const names = new Map(users.users.map((u) => [u.id, u.display_name]));
  const person = (id) => (id && names.has(id) ? names.get(id) : id || '');
  const revokeArea = el('div', {});
  const body = el('tbody', {});
  const more = el('button', { type: 'button', hidden: '' }, 'Show more waivers');
  let cursor = null;
  const append = (answer) => {
    for (const w of answer.waivers) {
      const standing = waiverStanding(w, person);
      let action = '';
      if (!w.revoked_at) {
        action = el('button', { type: 'button', 'aria-label': 'Revoke waiver ' + w.id }, 'Revoke');
        action.addEventListener('click', () => revokeWaiverForm(w, revokeArea));
      }
      const subject = w.subject_kind === 'device'
        ? link('#/devices/' + encodeURIComponent(w.subject), 'device ' + w.subject) : 'group ' + w.subject;
      body.append(el('tr', {}, ...[w.id, link('#/rules/' + encodeURIComponent(w.rule_id), w.rule_id), subject,
        w.justification, person(w.requested_by), person(w.approved_by), w.expires_at,
        el('span', { class: standing === 'active' ? '' : 'warn' }, standing), action].map((c) => el('td', {}, c))));
    }
    cursor = answer.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', async () => {
    try { append(await api('GET', '/v1/admin/waivers?limit=100&cursor=' + encodeURIComponent(cursor))); } catch (error) {
      say(error.message, true);
    }
  });
  append(first);
  const headings = ['Waiver', 'Rule', 'Exempted', 'Reason', 'Requested by', 'Granted by', 'Expires', 'Now', 'Action'];
  const list = first.waivers.length
    ? el('table', { id: 'waivers' }, el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', { scope: 'col' }, h)))), body)
    : el('p', { id: 'waivers' }, 'No waiver has been granted.');
  return [el('h1', {}, 'Waivers'),
    session.role === 'admin' ? null
      : el('p', {}, 'Requesting, approving and revoking waivers needs the admin role; you are ' + session.role + '.'),
    el('h2', {}, 'Granted waivers'), list, more, revokeArea,
    el('h2', {}, 'Requests waiting for approval'), pendingWaivers(changes),
    waiverForm()];
}

// ---- Catalog of government app bans

function httpsLink(url) {
  if (typeof url === 'string' && url.startsWith('https://')) return el('a', { href: url, rel: 'noreferrer' }, url);
  return url || '';
}

function matchesText(matches) { return matches.map((m) => m.id + ' (' + m.state + ')').join(', '); }

// Where we stand on a decision: banned by published rules, proposed, or not banned here.
function catalogStanding(entry) {
  if (entry.banned_here) return el('span', { class: 'ok' }, 'We ban it too: ' + matchesText(entry.rules));
  if (entry.rules.length || entry.adopted_as.length) {
    const all = [...entry.rules];
    for (const m of entry.adopted_as) if (!all.some((o) => o.id === m.id)) all.push(m);
    const partly = entry.apps.filter((a) => a.banned_here).map((a) => a.name);
    return el('span', { class: 'warn' }, (partly.length ? 'Partly banned here (' + partly.join(', ') + '); ' : 'Not banned yet; ') +
      'rules: ' + matchesText(all));
  }
  return el('span', { class: 'warn' }, 'Not banned here');
}

// The draft that adopting a decision proposes: the catalog's draft rule, its rationale citing the
// decision (jurisdiction, date, source) so the reviewer sees where it came from.
function adoptionDraft(entry) {
  const cited = 'Adopted from catalog entry ' + entry.id + ': ' + entry.jurisdiction + ', ' +
    (entry.effective || entry.announced) + (entry.source_url ? ', ' + entry.source_url : '') + '.';
  return { ...entry.draft, rationale: (entry.draft.rationale ? entry.draft.rationale + '\n\n' : '') + cited };
}

async function catalogPage() {
  const answer = await api('GET', '/v1/admin/catalog');
  const adoptArea = el('div', { id: 'adopt' });
  const only = el('input', { id: 'only-not-banned', type: 'checkbox' });
  const body = el('tbody', {});
  const render = () => {
    const entries = answer.entries.filter((e) => !only.checked || !e.banned_here);
    body.replaceChildren(...entries.map((entry) => {
      let action = '';
      if (entry.draft && !entry.banned_here && !entry.adopted_as.length) {
        action = el('button', { type: 'button', 'aria-label': 'Adopt as a draft: ' + entry.id }, 'Adopt as a draft');
        action.addEventListener('click', () => {
          adoptArea.replaceChildren(ruleForm('Adopt ' + entry.id + ' as a draft rule',
            el('p', {}, 'A draft rule from the decision of ', entry.jurisdiction, ' (', entry.id,
              '): every identifier it names as a target. Another administrator must approve it (two-person rule).'),
            adoptionDraft(entry), (entry.draft.targets || []).map((target) => ({ target, chosen: true, why: '' }))));
          adoptArea.querySelector('h2').focus();
        });
      }
      const apps = el('ul', {}, ...entry.apps.map((a) => el('li', {}, a.name + (a.vendor ? ' — ' + a.vendor : '') +
        (a.banned_here ? ' (banned here)' : ''))));
      return el('tr', {}, ...[entry.id, entry.jurisdiction, entry.effective || entry.announced, entry.authority, apps,
        httpsLink(entry.source_url), catalogStanding(entry), action].map((c) => el('td', {}, c)));
    }));
  };
  only.addEventListener('change', render);
  render();
  const headings = ['Decision', 'Jurisdiction', 'Date', 'Authority', 'Apps', 'Source', 'Here', 'Action'];
  return [el('h1', {}, 'Catalog of government app bans'),
    el('p', {}, 'Public decisions of Canada and allied governments, side by side with our rules: a decision is ' +
      'banned here when a published rule of ours targets one of each app\'s identifiers.'),
    el('p', {}, only, ' ', el('label', { for: 'only-not-banned', class: 'inline' }, 'Only what allies ban that we do not')),
    el('table', { id: 'catalog' }, el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', { scope: 'col' }, h)))), body),
    adoptArea];
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
  [/^#\/waivers$/, waiversPage],
  [/^#\/catalog$/, catalogPage],
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

window.addEventListener('hashchange', onNavigation);

(async () => {
  try {
    session = await api('GET', '/v1/session');
    enterApp();
  } catch {
    signInPage();
  }
})();
