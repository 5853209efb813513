// The console's Overview page loaded cold in Debian's chromium (headless, puppeteer-core), as
// bench/console.sh measures it (issue 16): each load is a NEW browser with a fresh profile (an
// empty cache, no cookie), so nothing is reused from a previous load.
//   node bench/console_overview.mjs <server url> <admin API token> <loads>
// Per load:
//   sign-in page   navigation to `/` until the sign-in form (#token) is shown: the page, app.js
//                  and style.css fetched with an empty cache;
//   sign-in        the token pasted and submitted until the overview is rendered (POST and GET
//                  /v1/session, then the overview's four API calls);
//   cold overview  the browser's cache cleared, then a new navigation to /#/overview, signed in,
//                  until the overview is rendered: what an administrator opening a bookmark sees.
// "Rendered" is the first animation frame after #devices-total (which the page inserts together
// with every table of the overview) is in the document; times are from the navigation's start
// (performance.timeOrigin) or from the click. Also prints each API call's duration as the browser
// saw it (Resource Timing) in the cold overview load. One JSON document on stdout.
import { launchChromium } from '../tests/console/chromium.mjs';

const [url, token, loadsArg] = process.argv.slice(2);
if (!token) {
  console.error('usage: node bench/console_overview.mjs <url> <token> [loads]');
  process.exit(2);
}
const loads = Number(loadsArg || 5);

// Put in by DevTools before any page script (the page's CSP does not apply to it): records when
// #devices-total appears and the animation frame after it, in ms since the navigation began.
const observer = () => {
  window.__bench = {};
  const seen = () => {
    if (window.__bench.dom !== undefined || !document.getElementById('devices-total')) return false;
    window.__bench.dom = performance.now();
    window.__bench.rows = document.querySelectorAll('main table tbody tr').length;
    requestAnimationFrame(() => { window.__bench.rendered = performance.now(); });
    return true;
  };
  new MutationObserver((_, self) => { if (seen()) self.disconnect(); })
    .observe(document, { childList: true, subtree: true });
};

async function rendered(page, timeout = 60000) {
  await page.waitForFunction(() => window.__bench && window.__bench.rendered !== undefined, { timeout });
  return page.evaluate(() => window.__bench);
}

const results = [];
for (let i = 0; i < loads; i++) {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    await page.evaluateOnNewDocument(observer);
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));

    const start = Date.now();
    await page.goto(url + '/');
    await page.waitForSelector('#token');
    const signInPage = await page.evaluate(() => performance.now());
    const wall = Date.now() - start;

    await page.type('#token', token);
    const click = await page.evaluate(() => performance.now());
    await page.click('#signin button[type=submit]');
    const signedIn = await rendered(page);

    const cdp = await page.createCDPSession();
    await cdp.send('Network.clearBrowserCache');
    // A new document: app.js and style.css fetched again, the session cookie sent with every call.
    await page.goto('about:blank');
    await page.goto(url + '/#/overview');
    const cold = await rendered(page);
    const calls = await page.evaluate(() => performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('/v1/') || /\.(js|css)$/.test(e.name))
      .map((e) => ({ path: new URL(e.name).pathname + new URL(e.name).search, start_ms: e.startTime,
        duration_ms: e.duration, bytes: e.encodedBodySize })));
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return { response_end_ms: n.responseEnd, dom_content_loaded_ms: n.domContentLoadedEventEnd };
    });
    if (errors.length) throw new Error('page errors: ' + errors.join('; '));
    results.push({
      sign_in_page_ms: signInPage, sign_in_page_wall_ms: wall,
      sign_in_to_overview_ms: signedIn.rendered - click,
      cold_overview_dom_ms: cold.dom, cold_overview_rendered_ms: cold.rendered, overview_table_rows: cold.rows,
      navigation: nav, calls,
    });
  } finally {
    await browser.close();
  }
}
console.log(JSON.stringify({ loads: results }, null, 2));
