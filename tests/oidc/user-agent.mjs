// A minimal user agent for the identity tests' scripts: cookies kept per host:port (never sent to
// another server), redirects followed by hand so a script sees where each one goes, and the
// provider's own login and consent pages (oidc-provider's devInteractions) filled in the way a
// person would: login name, any password, "Continue" — or "[ Cancel ]" to refuse.
export class UserAgent {
  constructor() {
    this.jars = new Map(); // "host:port" -> Map(name -> value)
  }

  jar(url) {
    const key = new URL(url).host;
    if (!this.jars.has(key)) this.jars.set(key, new Map());
    return this.jars.get(key);
  }

  async go(url, options = {}) {
    const jar = this.jar(url);
    const headers = { ...(options.headers ?? {}) };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(url, { ...options, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1);
      if (attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) jar.delete(name);
      else jar.set(name, value);
    }
    return response;
  }

  // Follows redirects from `response` until one leads to a URL starting with `stopAt` (returned
  // unfollowed as `stop`) or a page is shown (`page`).
  async follow(response, stopAt) {
    let current = response;
    let base = current.url;
    for (let hops = 0; hops < 20; hops++) {
      if (current.status < 300 || current.status >= 400) return { page: current };
      const location = new URL(current.headers.get('location'), base).toString();
      if (stopAt && location.startsWith(stopAt)) return { stop: new URL(location) };
      base = location;
      current = await this.go(location);
    }
    throw new Error('too many redirects');
  }

  async post(url, form) {
    return this.go(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  // Answers the provider's login and consent prompts as `login` until it redirects to `stopAt`.
  // With `cancel`, the first prompt is refused instead ("[ Cancel ]": error=access_denied). With
  // `stopAt` null the flow ends on a page of the provider's own (the device grant's success page),
  // returned as { page, html }.
  async signInAtProvider(step, issuer, stopAt, login, cancel = false) {
    for (let prompts = 0; step.page && prompts < 4; prompts++) {
      const html = step.html ?? (await step.page.text());
      const action = /action="([^"]+)"/.exec(html)?.[1];
      const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
      if (!action || !prompt) {
        if (stopAt === null) return { page: step.page, html };
        throw new Error(`unexpected page from the provider (HTTP ${step.page.status}): ${html.slice(0, 300)}`);
      }
      if (cancel) {
        const abort = /href="([^"]+\/abort)"/.exec(html)?.[1];
        if (!abort) throw new Error('the provider page has no cancel link');
        return this.follow(await this.go(new URL(abort, issuer).toString()), stopAt);
      }
      const form = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
      step = await this.follow(await this.post(new URL(action, issuer).toString(), form), stopAt);
    }
    if (step.page && stopAt === null && step.html === undefined) return { page: step.page, html: await step.page.text() };
    return step;
  }
}

// The hidden inputs of the form with `id` (or of the first form when id is omitted).
export function hiddenInputs(html, id) {
  const start = id ? html.indexOf(`id="${id}"`) : html.indexOf('<form');
  if (start < 0) return null;
  const form = html.slice(start, html.indexOf('</form>', start));
  const action = /action="([^"]+)"/.exec(form)?.[1];
  const fields = {};
  for (const match of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields[match[1]] = match[2];
  return { action, fields };
}
