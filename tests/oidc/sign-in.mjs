// Signs a user in at an OpenID Connect provider the way a browser would — authorization code
// flow with PKCE through the provider's own login and consent pages — and prints the ID token the
// provider issues. Used by appban's identity tests against provider.mjs.
//
//   node sign-in.mjs ISSUER CLIENT_ID LOGIN
import { createHash, randomBytes } from 'node:crypto';

const [issuer, clientId, login] = process.argv.slice(2);
if (!login) {
  console.error('usage: node sign-in.mjs ISSUER CLIENT_ID LOGIN');
  process.exit(2);
}
const redirectUri = 'http://127.0.0.1/callback';
const cookies = new Map();

async function go(url, options = {}) {
  const headers = { ...(options.headers ?? {}) };
  if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const response = await fetch(url, { ...options, headers, redirect: 'manual' });
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const at = pair.indexOf('=');
    cookies.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return response;
}

// Follows redirects until one leaves for the client's redirect URI or a page is shown.
async function follow(response) {
  let current = response;
  for (let hops = 0; hops < 20; hops++) {
    if (current.status < 300 || current.status >= 400) return { page: current };
    const location = new URL(current.headers.get('location'), issuer).toString();
    if (location.startsWith(redirectUri)) return { callback: new URL(location) };
    current = await go(location);
  }
  throw new Error('too many redirects');
}

const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const verifier = randomBytes(32).toString('base64url');
const challenge = createHash('sha256').update(verifier).digest('base64url');
const auth = new URL(discovery.authorization_endpoint);
auth.search = new URLSearchParams({
  client_id: clientId,
  response_type: 'code',
  scope: 'openid profile',
  redirect_uri: redirectUri,
  code_challenge: challenge,
  code_challenge_method: 'S256',
  state: randomBytes(8).toString('hex'),
  nonce: randomBytes(8).toString('hex'),
}).toString();

let step = await follow(await go(auth.toString()));
for (let prompts = 0; step.page && prompts < 4; prompts++) {
  const html = await step.page.text();
  const action = /action="([^"]+)"/.exec(html)?.[1];
  const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
  if (!action || !prompt) throw new Error(`unexpected page from the provider (HTTP ${step.page.status}): ${html.slice(0, 300)}`);
  const form = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
  step = await follow(
    await go(new URL(action, issuer).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    }),
  );
}
if (!step.callback) throw new Error('the provider did not redirect back with a code');
const code = step.callback.searchParams.get('code');
if (!code) throw new Error(`no code: ${step.callback}`);
const token = await fetch(discovery.token_endpoint, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    client_id: clientId,
    code_verifier: verifier,
  }).toString(),
});
const body = await token.json();
if (!body.id_token) throw new Error(`token endpoint answered ${token.status}: ${JSON.stringify(body)}`);
process.stdout.write(body.id_token + '\n');
