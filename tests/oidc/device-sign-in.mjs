// The person's half of the OAuth 2.0 device authorization grant (RFC 8628 §3.3), done the way a
// browser would on the provider's own pages: opens the verification URI that `appban login`
// printed, confirms the user code (or aborts, with --deny), signs in as LOGIN through the login and
// consent pages of oidc-provider's devInteractions, and checks the provider's success page.
//
//   node device-sign-in.mjs ISSUER VERIFICATION_URI_COMPLETE LOGIN [--deny]
import { UserAgent, hiddenInputs } from './user-agent.mjs';

const [issuer, verificationUri, login] = process.argv.slice(2);
const deny = process.argv.includes('--deny');
if (!login) {
  console.error('usage: node device-sign-in.mjs ISSUER VERIFICATION_URI_COMPLETE LOGIN [--deny]');
  process.exit(2);
}
const agent = new UserAgent();
const at = (path) => new URL(path, issuer).toString();
// Follows redirects to the page shown, with its text.
const show = async (response) => {
  const step = await agent.follow(response, null);
  return { page: step.page, html: await step.page.text() };
};

// With the code in the URI the provider answers with a form that posts it on (as a browser's script would).
let step = await show(await agent.go(verificationUri));
const relay = hiddenInputs(step.html);
if (!relay?.action) throw new Error(`no code form at ${verificationUri}: ${step.html.slice(0, 300)}`);
step = await show(await agent.post(at(relay.action), relay.fields));

const confirm = hiddenInputs(step.html, 'op.deviceConfirmForm');
if (!confirm?.action) throw new Error(`no confirmation page (HTTP ${step.page.status}): ${step.html.slice(0, 300)}`);
const answer = { ...confirm.fields };
if (deny) {
  delete answer.confirm;
  answer.abort = 'yes';
}
step = await show(await agent.post(at(confirm.action), answer));
if (!deny) step = await agent.signInAtProvider(step, issuer, null, login);
// An abort is answered with the code page again, saying the request was interrupted.
if (!step.html?.includes(deny ? 'interrupted' : 'Sign-in Success')) {
  throw new Error(`unexpected final page (HTTP ${step.page?.status}): ${step.html?.slice(0, 300)}`);
}
process.stdout.write(deny ? 'denied\n' : 'signed in\n');
