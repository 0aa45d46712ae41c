// Drive an auth server with Better Auth's own browser/Node client and print a JSON summary.
//
// Usage: node client.mjs <server origin> <email> [password]
//
// Steps: sign-up, sign-in, get-session, token, jwks, sign-out, then get-session again. Node has no
// cookie jar, so the session is carried the way the bearer plugin documents it: the
// `set-auth-token` response header is stored and sent back as `Authorization: Bearer <token>`.
// Node's fetch sends `sec-fetch-mode: cors`, and with a Sec-Fetch header Better Auth requires a
// trusted Origin on sign-in and sign-up, so every request carries the server's own origin.
//
// Prints one JSON object: {"steps": {<step>: {"status", "code", "data"}}, "userId", "email",
// "signInToken", "sessionJwt", "tokenJwt", "jwksKids"}. The exit code is 0 even when a step fails,
// so that the caller checks each step; it is 2 on bad usage.

import process from "node:process";

import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";

const [origin, email, password = "correct horse battery"] = process.argv.slice(2);
if (!origin || !email) {
  console.error("usage: node client.mjs <server origin> <email> [password]");
  process.exit(2);
}

let bearerToken = null;

const client = createAuthClient({
  baseURL: origin,
  plugins: [jwtClient()],
  fetchOptions: {
    headers: { Origin: new URL(origin).origin },
    auth: { type: "Bearer", token: () => bearerToken ?? undefined },
  },
});

const steps = {};

// Run one client call and record its status, error code, body and selected response headers.
async function record(name, call) {
  let status = null;
  let headers = {};
  const fetchOptions = {
    onResponse(context) {
      status = context.response.status;
      headers = {
        setAuthToken: context.response.headers.get("set-auth-token"),
        setAuthJwt: context.response.headers.get("set-auth-jwt"),
      };
    },
  };
  const result = await call(fetchOptions);
  steps[name] = {
    status,
    code: result.error?.code ?? null,
    message: result.error?.message ?? null,
    data: result.data ?? null,
    headers,
  };
  if (headers.setAuthToken) {
    bearerToken = headers.setAuthToken;
  }
  return steps[name];
}

const signUp = await record("signUp", (fetchOptions) =>
  client.signUp.email({ name: "Interop Client", email, password }, fetchOptions),
);
// Forget the sign-up session so that sign-in must provide its own.
bearerToken = null;
const signIn = await record("signIn", (fetchOptions) =>
  client.signIn.email({ email, password }, fetchOptions),
);
const session = await record("getSession", (fetchOptions) => client.getSession({ fetchOptions }));
const token = await record("token", (fetchOptions) => client.token({ fetchOptions }));
const jwks = await record("jwks", (fetchOptions) => client.jwks(fetchOptions));
await record("signOut", (fetchOptions) => client.signOut({ fetchOptions }));
await record("getSessionAfterSignOut", (fetchOptions) => client.getSession({ fetchOptions }));

const summary = {
  steps,
  userId: signUp.data?.user?.id ?? null,
  email: signUp.data?.user?.email ?? null,
  signInToken: signIn.data?.token ?? null,
  sessionJwt: session.headers.setAuthJwt ?? null,
  tokenJwt: token.data?.token ?? null,
  jwksKids: (jwks.data?.keys ?? []).map((key) => key.kid),
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
// The client schedules session-signal timers after sign-in and sign-out, so exit without waiting.
process.exit(0);
