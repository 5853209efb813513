// A real OpenID Connect provider for appban's identity tests: panva's oidc-provider (OpenID
// Certified), on loopback, with its built-in login pages ("any login, any password"). Nothing here
// fakes a token: every token is issued by oidc-provider through the authorization code flow
// (sign-in.mjs drives it as a browser would).
//
//   node provider.mjs --port PORT --keys FILE [--rotate] [--id-token-ttl SECONDS]
//                     [--client-key PEM_FILE] [--client-secret SECRET] [--device-code-ttl SECONDS]
//
// FILE holds the provider's private signing keys (a JWKS). It is created with one RSA key when
// missing; --rotate puts a new key FIRST (the one oidc-provider signs with) and keeps the old one
// published, which is how a provider rolls its keys over. The provider prints "ready <issuer>" on
// stdout once it listens.
//
// Accounts: the login name is the subject. alice, bob and dave carry the role appban-admin in the
// "roles" claim, carol appban-analyst; any other login has no role. Clients: "appban" (appban's
// client id) and "other-app" (another application of the same provider), both public native
// clients with the redirect URI http://127.0.0.1/callback and PKCE, which may also use the device
// authorization grant (RFC 8628). For the web console's sign-in
// (done by appban's server, redirect URI http://127.0.0.1:<any port>/console/callback):
// "appban-console" authenticates with private_key_jwt — its key set is the public half of
// --client-key, the test's own key file — and "appban-console-basic" with client_secret_basic
// and --client-secret.
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';

function arg(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const port = Number(arg('--port', '0'));
const keysFile = arg('--keys');
const idTokenTtl = Number(arg('--id-token-ttl', '600'));
const clientKeyFile = arg('--client-key');
const clientSecret = arg('--client-secret');
const deviceCodeTtl = Number(arg('--device-code-ttl', '600'));
if (!keysFile) {
  console.error('usage: node provider.mjs --port PORT --keys FILE [--rotate] [--id-token-ttl SECONDS] [--device-code-ttl SECONDS]');
  process.exit(2);
}

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

let keys = existsSync(keysFile) ? JSON.parse(readFileSync(keysFile, 'utf8')).keys : [];
if (keys.length === 0 || process.argv.includes('--rotate')) keys = [newKey(), ...keys];
writeFileSync(keysFile, JSON.stringify({ keys }), { mode: 0o600 });

const roles = { alice: ['appban-admin'], bob: ['appban-admin'], dave: ['appban-admin'], carol: ['appban-analyst'] };
const names = { alice: 'Alice Martin', bob: 'Bob Tremblay', carol: 'Carol Singh', dave: 'Dave Okafor' };

const client = (id) => ({
  client_id: id,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  redirect_uris: ['http://127.0.0.1/callback'],
  grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
  response_types: ['code'],
});

// The console's clients: confidential, code flow with PKCE. "native" lets a loopback redirect URI
// carry any port (RFC 8252 §7.3), which the server's test port is.
const consoleClient = (id, auth) => ({
  client_id: id,
  application_type: 'native',
  redirect_uris: ['http://127.0.0.1/console/callback'],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  ...auth,
});
const clients = [client('appban'), client('other-app')];
if (clientKeyFile) {
  const jwk = createPublicKey(readFileSync(clientKeyFile)).export({ format: 'jwk' });
  clients.push(consoleClient('appban-console', {
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [{ ...jwk, use: 'sig' }] },
  }));
}
if (clientSecret) {
  clients.push(consoleClient('appban-console-basic', {
    token_endpoint_auth_method: 'client_secret_basic',
    client_secret: clientSecret,
  }));
}

// Listen first so the issuer can name the real port when --port 0 was asked for.
import { createServer } from 'node:http';
const server = createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

// A provider over the current keys. SIGUSR1 rolls the keys over in place: a new key first (the
// one it signs with), the old ones kept for verification, the same port and issuer — a restart
// could lose its port to another process in between.
const makeProvider = () => {
  const made = new Provider(issuer, {
    clients,
    jwks: { keys },
    // Claims asked for by scope go into the ID token too (what appban reads).
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], profile: ['name', 'roles'] },
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => {
        const claims = { sub: id, name: names[id] ?? id };
        if (roles[id]) claims.roles = roles[id];
        return claims;
      },
    }),
    ttl: { IdToken: idTokenTtl, AccessToken: idTokenTtl, Session: 3600, Interaction: 600, Grant: 3600, DeviceCode: deviceCodeTtl },
    // deviceFlow: the OAuth 2.0 device authorization grant `appban login` uses (RFC 8628);
    // device-sign-in.mjs is the person's half, on the provider's own pages.
    features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
    pkce: { required: () => true },
  });
  made.proxy = false;
  return made.callback();
};
let handler = makeProvider();
server.on('request', (request, response) => handler(request, response));
process.on('SIGUSR1', () => {
  keys = [newKey(), ...keys];
  writeFileSync(keysFile, JSON.stringify({ keys }), { mode: 0o600 });
  handler = makeProvider();
  process.stdout.write(`rotated ${keys[0].kid}\n`);
});
process.stdout.write(`ready ${issuer}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
