// A minimal browser for the provider's own pages (tests only): keeps cookies, follows redirects by
// hand, and submits the login and consent forms of oidc-provider's devInteractions, signing in as
// the given login with any password. Shared by sign-in.mjs and device-sign-in.mjs.
export class Browser {
  constructor(issuer) {
    this.issuer = issuer;
    this.cookies = new Map();
  }

  async go(url, options = {}) {
    const headers = { ...(options.headers ?? {}) };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(new URL(url, this.issuer).toString(), { ...options, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      this.cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return response;
  }

  async post(url, form) {
    return this.go(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  // Follows redirects until one leaves for `stopAt` (a URL prefix) or a page is shown.
  async follow(response, stopAt) {
    let current = response;
    for (let hops = 0; hops < 20; hops++) {
      if (current.status < 300 || current.status >= 400) return { page: current, html: await current.text() };
      const location = new URL(current.headers.get('location'), this.issuer).toString();
      if (stopAt && location.startsWith(stopAt)) return { callback: new URL(location) };
      current = await this.go(location);
    }
    throw new Error('too many redirects');
  }

  // Answers the login and consent prompts of devInteractions until the flow leaves them.
  async signIn(step, login, stopAt) {
    for (let prompts = 0; step.page && prompts < 4; prompts++) {
      const action = /action="([^"]+)"/.exec(step.html)?.[1];
      const prompt = /name="prompt" value="([^"]+)"/.exec(step.html)?.[1];
      if (!action || !prompt) return step;
      const form = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
      step = await this.follow(await this.post(action, form), stopAt);
    }
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
