// Auth from the command line, as an operator runs it: `serve` with JWT key
// files and --profile production, `call --token/--token-file`. Secrets and
// tokens never show up in what the server writes.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { makeCertSet } from "../support/certs.js";
import { Cleanup, logLinesOf, runCli, startServer, tempDir, type Exit, type ServerProcess } from "../support/cli-process.js";
import { AUDIENCE, hs256, ISSUER, makeTestKeys, type TestKeys } from "../support/tokens.js";

/** 64 + the gRPC code, as `call` exits on an error status. */
const EXIT = { UNAUTHENTICATED: 64 + 16, PERMISSION_DENIED: 64 + 7 } as const;

function statusOf(exit: Exit): { code?: string; message?: string } {
  try {
    return JSON.parse(exit.stderr) as { code?: string; message?: string };
  } catch {
    return {};
  }
}

describe("switchyard serve with bearer-token auth, and call --token", () => {
  const cleanup = new Cleanup();
  let keys: TestKeys;
  let dir: string;
  let server: ServerProcess;
  const tokensSent: string[] = [];

  before(async () => {
    dir = await tempDir(cleanup, "switchyard-auth-cli-");
    keys = await makeTestKeys(dir);
    server = await startServer(cleanup, {
      extraArgs: ["--jwt-secret-file", keys.secretFile, "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE],
    });
  });
  after(() => cleanup.run());

  const call = (method: string, json: string, ...flags: string[]): Promise<Exit> => runCli(["call", method, json, "--address", server.address, ...flags]);

  it("the listening line says what auth is on, and never the secret", async () => {
    const listening = server.logs().find((line) => line.msg?.startsWith("switchyard listening on"));
    assert.ok(listening, server.stderr());
    assert.equal(listening["profile"], "development");
    assert.equal(listening["auth"], `bearer tokens (algorithms HS256; issuer ${ISSUER}; audience ${AUDIENCE})`);
    assert.ok(!server.stderr().includes(Buffer.from(keys.secret).toString("utf8")), "the secret is in the server's output");
  });

  it("a call without a token exits with UNAUTHENTICATED; --token-file and --token send one", async () => {
    const userId = `user-${randomUUID()}`;
    const anonymous = await call("UserService/GetUser", JSON.stringify({ userId }));
    assert.equal(anonymous.code, EXIT.UNAUTHENTICATED, anonymous.stderr);
    assert.match(statusOf(anonymous).message ?? "", /authorization: Bearer <JWT>/);

    const adminToken = await hs256(keys, { sub: "operator", roles: ["admin"] });
    tokensSent.push(adminToken);
    const tokenFile = path.join(dir, "admin.jwt");
    await fs.writeFile(tokenFile, `${adminToken}\n`, { mode: 0o600 });
    const created = await call("UserService/CreateUser", JSON.stringify({ userId, name: "Ada", email: "ada@example.com" }), "--token-file", tokenFile);
    assert.equal(created.code, 0, created.stderr);

    const readerToken = await hs256(keys, { sub: "reader", scope: "users:read" });
    tokensSent.push(readerToken);
    const read = await call("UserService/GetUser", JSON.stringify({ userId }), "--token", readerToken);
    assert.equal(read.code, 0, read.stderr);
    assert.equal((JSON.parse(read.stdout) as { userId: string }).userId, userId);

    const denied = await call("UserService/CreateUser", JSON.stringify({ userId: `user-${randomUUID()}`, name: "B", email: "b@example.com" }), "--token", readerToken);
    assert.equal(denied.code, EXIT.PERMISSION_DENIED, denied.stderr);
    assert.equal(statusOf(denied).code, "PERMISSION_DENIED");

    const expired = await hs256(keys, { roles: ["admin"], expiresIn: -3600 });
    tokensSent.push(expired);
    const refused = await call("UserService/GetUser", JSON.stringify({ userId }), "--token", expired);
    assert.equal(refused.code, EXIT.UNAUTHENTICATED, refused.stderr);
    assert.ok(!refused.stderr.includes(expired.split(".")[2] as string), "the status echoes the token");
  });

  it("refuses --token together with --token-file", async () => {
    const exit = await call("UserService/GetUser", "{}", "--token", "a.b.c", "--token-file", path.join(dir, "x"));
    assert.equal(exit.code, 1);
    assert.match(exit.stderr, /--token or --token-file, not both/);
  });

  it("the server's log never holds the secret or a token", async () => {
    const exit = await server.stop();
    const secret = Buffer.from(keys.secret).toString("utf8");
    assert.ok(!exit.stderr.includes(secret), "the JWT secret is in the server's log");
    for (const token of tokensSent) {
      for (const part of token.split(".").slice(1)) assert.ok(!exit.stderr.includes(part), "a token is in the server's log");
    }
    assert.ok(logLinesOf(exit.stderr).some((line) => line.msg === "call finished"), "the calls were not logged at all");
  });
});

describe("switchyard serve: refusals at start", { concurrency: true }, () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it("--profile production without TLS, auth or audience refuses to start, saying what is missing", async () => {
    const dataDir = await tempDir(cleanup, "switchyard-auth-cli-data-");
    const exit = await runCli(["serve", "--port", "0", "--data-dir", dataDir, "--profile", "production"]);
    assert.equal(exit.code, 1, exit.stderr);
    assert.match(exit.stderr, /--profile production needs TLS \(--tls-cert and --tls-key\), bearer-token auth \(--jwt-secret-file, --jwt-public-key-file or --jwks-file\), --jwt-audience/);
  });

  it("--profile production with TLS and auth starts, and says so", async () => {
    const dir = await tempDir(cleanup, "switchyard-auth-cli-keys-");
    const keys = await makeTestKeys(dir);
    const certs = await makeCertSet(cleanup);
    const server = await startServer(cleanup, {
      extraArgs: [
        "--profile", "production",
        "--tls-cert", certs.server, "--tls-key", certs.serverKey,
        "--jwt-public-key-file", keys.rsaPublicKeyFile, "--jwks-file", keys.jwksFile, "--jwt-audience", AUDIENCE,
      ],
    });
    const listening = server.logs().find((line) => line.msg?.startsWith("switchyard listening on"));
    assert.equal(listening?.["profile"], "production");
    assert.equal(listening?.["tls"], "tls");
    assert.match(String(listening?.["auth"]), /^bearer tokens \(algorithms RS256, .*ES256; audience switchyard\)$/);
    const health = await runCli(["health", "--address", `localhost:${server.port}`, "--tls-ca", certs.ca]);
    assert.equal(health.code, 0, health.stderr);
  });

  it("a secret that is too short fails the start without printing it", async () => {
    const dir = await tempDir(cleanup, "switchyard-auth-cli-short-");
    const secretFile = path.join(dir, "secret");
    const secret = `short-${randomUUID().slice(0, 8)}`;
    await fs.writeFile(secretFile, secret);
    const exit = await runCli(["serve", "--port", "0", "--data-dir", dir, "--jwt-secret-file", secretFile]);
    assert.equal(exit.code, 1, exit.stderr);
    const fatal = logLinesOf(exit.stderr).find((line) => line.msg === "could not start");
    assert.ok(fatal, exit.stderr);
    assert.match(JSON.stringify(fatal), /HS256 needs at least 32/);
    assert.ok(!exit.stderr.includes(secret), "the secret is in the output");
  });

  it("a missing key file is a usage error naming it", async () => {
    const dir = await tempDir(cleanup, "switchyard-auth-cli-missing-");
    const missing = path.join(dir, "nope.pem");
    const exit = await runCli(["serve", "--port", "0", "--data-dir", dir, "--jwt-public-key-file", missing]);
    assert.equal(exit.code, 1);
    assert.match(exit.stderr, new RegExp(`no such file: ${missing}`));
  });
});
