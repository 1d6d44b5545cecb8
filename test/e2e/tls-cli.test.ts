// TLS through the CLI, as the README tells a newcomer: `certs dev`, then
// `serve`, `health` and `call` with the --tls-* flags, in both topologies.
// Sequential on purpose: each step spawns a node process, and a loaded machine
// runs a few of them at once far more slowly than one after the other.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Cleanup, logLinesOf, runCli, startServer, tempDir, type Exit, type ServerProcess } from "../support/cli-process.js";

function describeExit(exit: Exit): string {
  return `exit code ${exit.code}, signal ${exit.signal}\nstdout:\n${exit.stdout}\nstderr:\n${exit.stderr}`;
}

/** The files `certs dev` writes into `dir`. */
function certFiles(dir: string) {
  const at = (name: string): string => path.join(dir, name);
  return {
    ca: at("ca.pem"),
    caKey: at("ca-key.pem"),
    server: at("server.pem"),
    serverKey: at("server-key.pem"),
    client: at("client.pem"),
    clientKey: at("client-key.pem"),
  };
}

type Files = ReturnType<typeof certFiles>;

const serveMtls = (files: Files): string[] => ["--tls-cert", files.server, "--tls-key", files.serverKey, "--tls-ca", files.ca];
const asClient = (files: Files): string[] => ["--tls-ca", files.ca, "--tls-cert", files.client, "--tls-key", files.clientKey];
/** By name, not 127.0.0.1: the certificate names both, and grpc-js warns when the TLS server name is an IP address. */
const byName = (server: ServerProcess): string => `localhost:${server.port}`;

describe("switchyard certs dev", () => {
  it("writes the six files in one step, then refuses to overwrite them without --force", async (t) => {
    const dir = path.join(await tempDir(t), "certs");
    const exit = await runCli(["certs", "dev", "--out", dir]);
    assert.equal(exit.code, 0, describeExit(exit));
    assert.deepEqual((await fs.readdir(dir)).sort(), ["ca-key.pem", "ca.pem", "client-key.pem", "client.pem", "server-key.pem", "server.pem"]);
    for (const key of ["ca-key.pem", "server-key.pem", "client-key.pem"]) {
      assert.equal((await fs.stat(path.join(dir, key))).mode & 0o777, 0o600, key);
    }
    assert.match(exit.stdout, /switchyard serve --tls-cert .*server\.pem --tls-key .*server-key\.pem --tls-ca .*ca\.pem/);

    const again = await runCli(["certs", "dev", "--out", dir]);
    assert.equal(again.code, 1, describeExit(again));
    assert.match(again.stderr, /already exist; pass --force to replace them/);
    const forced = await runCli(["certs", "dev", "--out", dir, "--force"]);
    assert.equal(forced.code, 0, describeExit(forced));
  });
});

describe("switchyard serve with mTLS, health and call with client certificates", () => {
  const cleanup = new Cleanup();
  let files: Files;
  let server: ServerProcess;

  before(async () => {
    const dir = await tempDir(cleanup);
    const made = await runCli(["certs", "dev", "--out", dir]);
    assert.equal(made.code, 0, describeExit(made));
    files = certFiles(dir);
    server = await startServer(cleanup, { extraArgs: serveMtls(files) });
  });
  after(() => cleanup.run());

  it("says in its listening line that it serves mTLS, and logs the certificate it loaded", () => {
    const lines = logLinesOf(server.stderr());
    const listening = lines.find((line) => String(line.msg).startsWith("switchyard listening on"));
    assert.equal(listening?.["tls"], "mtls");
    const loaded = lines.find((line) => line.msg === "TLS certificate loaded");
    assert.equal(loaded?.["file"], files.server);
    assert.match(String(loaded?.["subjectAltName"]), /DNS:localhost, IP Address:127\.0\.0\.1/);
  });

  it("health with the client certificate prints SERVING", async () => {
    const exit = await runCli(["health", "--address", byName(server), ...asClient(files)]);
    assert.equal(exit.code, 0, describeExit(exit));
    assert.equal(exit.stdout, "SERVING\n");
    assert.equal(exit.stderr, "");
  });

  it("health over TLS but without a client certificate fails with UNAVAILABLE", async () => {
    const exit = await runCli(["health", "--address", byName(server), "--tls-ca", files.ca]);
    assert.equal(exit.code, 2, describeExit(exit));
    assert.match(exit.stderr, /health check failed: UNAVAILABLE/);
  });

  it("call with the client certificate does JSON in and JSON out", async () => {
    const userId = `user-${randomUUID()}`;
    const exit = await runCli([
      "call", "--address", byName(server), ...asClient(files),
      "UserService/CreateUser", JSON.stringify({ user_id: userId, name: "Ada", email: "ada@example.com" }),
    ]);
    assert.equal(exit.code, 0, describeExit(exit));
    assert.equal((JSON.parse(exit.stdout) as { userId?: string }).userId, userId);
  });

  it("call checks the server name given with --tls-server-name", async () => {
    const wrong = await runCli([
      "call", "--address", byName(server), ...asClient(files), "--tls-server-name", "users.example", "UserService/GetUser", '{"user_id":"u"}',
    ]);
    assert.equal(wrong.code, 64 + 14, describeExit(wrong));
    assert.match(wrong.stderr, /UNAVAILABLE/);
  });

  it("call names a missing certificate file and calls nothing", async () => {
    const missing = path.join(path.dirname(files.ca), "missing.pem");
    const exit = await runCli(["call", "--address", byName(server), "--tls-ca", missing, "UserService/GetUser", '{"user_id":"u"}']);
    assert.equal(exit.code, 1, describeExit(exit));
    assert.match(exit.stderr, new RegExp(`cannot read the TLS CA certificate file ${missing.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: no such file`));
  });
});

describe("switchyard serve: split topology over mTLS", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it("OrderService presents --client-cert to UserService and CreateOrder works", async () => {
    const dir = await tempDir(cleanup);
    const made = await runCli(["certs", "dev", "--out", dir]);
    assert.equal(made.code, 0, describeExit(made));
    const files = certFiles(dir);
    const users = await startServer(cleanup, { services: "user", extraArgs: serveMtls(files) });
    const orders = await startServer(cleanup, {
      services: "order",
      userService: byName(users),
      // The CA that checks UserService defaults to --tls-ca.
      extraArgs: [...serveMtls(files), "--client-cert", files.client, "--client-key", files.clientKey],
    });
    const listening = logLinesOf(orders.stderr()).find((line) => String(line.msg).startsWith("switchyard listening on"));
    assert.equal(listening?.["userServiceTls"], "mtls");

    const userId = `user-${randomUUID()}`;
    const created = await runCli([
      "call", "--address", byName(users), ...asClient(files),
      "UserService/CreateUser", JSON.stringify({ user_id: userId, name: "Ada", email: "ada@example.com" }),
    ]);
    assert.equal(created.code, 0, describeExit(created));
    const orderId = `order-${randomUUID()}`;
    const ordered = await runCli([
      "call", "--address", byName(orders), ...asClient(files),
      "OrderService/CreateOrder", JSON.stringify({ order_id: orderId, user_id: userId }),
    ]);
    assert.equal(ordered.code, 0, describeExit(ordered));
    assert.equal((JSON.parse(ordered.stdout) as { orderId?: string }).orderId, orderId);
  });
});

describe("switchyard serve: TLS flags that do not fit", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["--tls-cert without --tls-key", ["--tls-cert", "server.pem"], /--tls-cert and --tls-key go together/],
    ["--tls-ca without a server certificate", ["--tls-ca", "ca.pem"], /--tls-ca \(require client certificates\) needs --tls-cert and --tls-key/],
    ["--client-cert without --user-service", ["--client-cert", "c.pem", "--client-key", "k.pem"], /set up the channel to --user-service, which is not given/],
  ];
  for (const [name, flags, message] of cases) {
    it(`refuses ${name}`, async (t) => {
      const exit = await runCli(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", await tempDir(t), ...flags]);
      assert.equal(exit.code, 1, describeExit(exit));
      assert.match(exit.stderr, message);
      assert.ok(!exit.stderr.includes("switchyard listening on"), "the server must not start");
    });
  }

  it("refuses to start with a missing certificate file, naming it", async (t) => {
    const dir = await tempDir(t);
    const made = await runCli(["certs", "dev", "--out", dir]);
    assert.equal(made.code, 0, describeExit(made));
    const missing = path.join(dir, "nope.pem");
    const exit = await runCli([
      "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", await tempDir(t),
      "--tls-cert", missing, "--tls-key", path.join(dir, "server-key.pem"),
    ]);
    assert.equal(exit.code, 1, describeExit(exit));
    const fatal = logLinesOf(exit.stderr).find((line) => line.msg === "could not start");
    assert.ok(fatal, describeExit(exit));
    assert.ok(JSON.stringify(fatal).includes(`cannot read the TLS certificate file ${missing}: no such file`), describeExit(exit));
  });
});
