// Run a real Better Auth server (email/password, jwt and bearer plugins) for the interop tests.
//
// Environment:
//   INTEROP_DB                  SQLite file (required); tables are created with Better Auth's migrations
//   INTEROP_PORT                port on 127.0.0.1 (default 0: the OS picks a free one)
//   BETTER_AUTH_SECRET          secret for cookie signatures and JWKS private-key encryption (required)
//   INTEROP_JWT_ALG             RS256 or EdDSA (default EdDSA, Better Auth's own default)
//   INTEROP_ROTATION_INTERVAL   seconds until a signing key expires (default: never)
//   INTEROP_GRACE_PERIOD        seconds an expired key stays in the JWKS (default: Better Auth's 30 days)
//   INTEROP_RATE_LIMIT          "true" or "false" (default: Better Auth's, which is off unless NODE_ENV=production)
//
// Once listening, prints one JSON line to stdout:
//   {"ready": true, "port": N, "migrations": {"createdTables": [...], "addedColumns": {...}}}
// "migrations" lists what getMigrations() had to create, so a test can tell whether a database
// written by another server already had Better Auth's schema. Logs go to stderr only.

import http from "node:http";
import process from "node:process";

import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { bearer, jwt } from "better-auth/plugins";

const SUPPORTED_ALGS = new Set(["RS256", "EdDSA"]);

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`missing environment variable ${name}`);
  }
  return value;
}

function optionalSeconds(name) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    return undefined;
  }
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new Error(`invalid ${name}=${JSON.stringify(value)}: expected a positive number of seconds`);
  }
  return seconds;
}

function rateLimitOption() {
  const value = process.env.INTEROP_RATE_LIMIT;
  if (value === undefined || value === "") {
    return undefined;
  }
  if (value !== "true" && value !== "false") {
    throw new Error(`invalid INTEROP_RATE_LIMIT=${JSON.stringify(value)}: expected true or false`);
  }
  return { enabled: value === "true" };
}

function buildOptions(port, database) {
  const alg = process.env.INTEROP_JWT_ALG || "EdDSA";
  if (!SUPPORTED_ALGS.has(alg)) {
    throw new Error(`invalid INTEROP_JWT_ALG=${JSON.stringify(alg)}: expected RS256 or EdDSA`);
  }
  const jwks = {
    keyPairConfig: alg === "EdDSA" ? { alg: "EdDSA", crv: "Ed25519" } : { alg: "RS256" },
  };
  const rotationInterval = optionalSeconds("INTEROP_ROTATION_INTERVAL");
  if (rotationInterval !== undefined) {
    jwks.rotationInterval = rotationInterval;
  }
  const gracePeriod = optionalSeconds("INTEROP_GRACE_PERIOD");
  if (gracePeriod !== undefined) {
    jwks.gracePeriod = gracePeriod;
  }

  const options = {
    baseURL: `http://127.0.0.1:${port}`,
    secret: requireEnv("BETTER_AUTH_SECRET"),
    database,
    emailAndPassword: { enabled: true },
    plugins: [jwt({ jwks }), bearer()],
    telemetry: { enabled: false },
    logger: {
      level: "warn",
      log: (level, message, ...args) => console.error(`[better-auth ${level}] ${message}`, ...args),
    },
  };
  const rateLimit = rateLimitOption();
  if (rateLimit !== undefined) {
    options.rateLimit = rateLimit;
  }
  return options;
}

async function main() {
  const database = new Database(requireEnv("INTEROP_DB"));
  const requestedPort = Number(process.env.INTEROP_PORT || "0");

  // The baseURL must contain the real port, which is known only after listen() when port 0 is
  // requested. Until the Better Auth handler is installed below, every request gets a 503.
  let handler = (_request, response) => {
    response.writeHead(503).end();
  };
  const server = http.createServer((request, response) => handler(request, response));
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(requestedPort, "127.0.0.1", resolve);
  });
  const { port } = server.address();

  const options = buildOptions(port, database);
  const { toBeCreated, toBeAdded, runMigrations } = await getMigrations(options);
  await runMigrations();
  const auth = betterAuth(options);
  handler = toNodeHandler(auth);

  const migrations = {
    createdTables: toBeCreated.map((table) => table.table),
    addedColumns: Object.fromEntries(toBeAdded.map((table) => [table.table, Object.keys(table.fields)])),
  };
  process.stdout.write(`${JSON.stringify({ ready: true, port, migrations })}\n`);

  const shutdown = () => {
    server.close(() => {
      database.close();
      process.exit(0);
    });
    // Keep-alive connections would hold close() open, so they are cut after a short wait.
    setTimeout(() => server.closeAllConnections(), 200).unref();
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

main().catch((error) => {
  console.error(`server.mjs failed to start: ${error.stack || error}`);
  process.exit(1);
});
