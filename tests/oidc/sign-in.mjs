// Signs a user in at an OpenID Connect provider the way a browser would — authorization code
// flow with PKCE through the provider's own login and consent pages — and prints the ID token the
// provider issues. Used by appban's identity tests against provider.mjs.
//
//   node sign-in.mjs ISSUER CLIENT_ID LOGIN
import { createHash, randomBytes } from 'node:crypto';
import { Browser } from './browser.mjs';

const [issuer, clientId, login] = process.argv.slice(2);
if (!login) {
  console.error('usage: node sign-in.mjs ISSUER CLIENT_ID LOGIN');
  process.exit(2);
}
const redirectUri = 'http://127.0.0.1/callback';
const browser = new Browser(issuer);

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

const step = await browser.signIn(await browser.follow(await browser.go(auth.toString()), redirectUri), login, redirectUri);
if (!step.callback) {
  throw new Error(`the provider did not redirect back with a code (HTTP ${step.page?.status}): ${step.html?.slice(0, 300)}`);
}
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
