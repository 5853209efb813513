// Drives the web console's sign-in through the identity provider the way a browser does, without
// the browser: GET <server>/console/sign-in?provider=NAME, the provider's login and consent pages,
// the redirect back to <server>/console/callback. Prints one JSON object saying what the server
// answered, for appban's identity tests to check.
//
//   node console-sign-in.mjs SERVER_URL PROVIDER LOGIN [ok|deny|bad-state|replay]
//
// ok: a normal sign-in; then GET /v1/session with the cookie the callback set.
// deny: the person presses "[ Cancel ]" at the provider (error=access_denied comes back).
// bad-state: the redirect back arrives with a `state` other than the one the server issued.
// replay: a normal sign-in, then the same callback URL (code and state) sent again with the
//         sign-in cookie it came with.
import { UserAgent } from './user-agent.mjs';

const [server, provider, login, mode = 'ok'] = process.argv.slice(2);
if (!login) {
  console.error('usage: node console-sign-in.mjs SERVER_URL PROVIDER LOGIN [ok|deny|bad-state|replay]');
  process.exit(2);
}
const agent = new UserAgent();
const callbackPrefix = new URL('/console/callback', server).toString();
const report = {};

const start = await agent.go(new URL(`/console/sign-in?provider=${encodeURIComponent(provider)}`, server).toString());
report.start_status = start.status;
report.start_set_cookie = start.headers.getSetCookie();
if (start.status !== 302) {
  report.start_body = await start.text();
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exit(0);
}
report.authorization_url = start.headers.get('location');
const issuer = new URL(report.authorization_url).origin;
const flowCookie = agent.jar(server).get('appban_sign_in');

const step = await agent.signInAtProvider(await agent.follow(start, callbackPrefix), issuer, callbackPrefix, login,
  mode === 'deny');
if (!step.stop) throw new Error(`the provider did not redirect back to ${callbackPrefix}`);
const callback = step.stop;
report.callback_query = Object.fromEntries(callback.searchParams);
if (mode === 'bad-state') callback.searchParams.set('state', 'f'.repeat(64));

const answer = await agent.go(callback.toString());
report.callback_status = answer.status;
report.callback_location = answer.headers.get('location');
report.callback_set_cookie = answer.headers.getSetCookie();
report.callback_csp = answer.headers.get('content-security-policy');
report.callback_body = await answer.text();

if (mode === 'ok' || mode === 'replay') {
  const session = await agent.go(new URL('/v1/session', server).toString());
  report.session_status = session.status;
  report.session = await session.json().catch(() => null);
}
if (mode === 'replay') {
  const again = await fetch(callback.toString(), { headers: { cookie: `appban_sign_in=${flowCookie}` }, redirect: 'manual' });
  report.replay_status = again.status;
  report.replay_set_cookie = again.headers.getSetCookie();
  report.replay_body = await again.text();
}
process.stdout.write(JSON.stringify(report) + '\n');
