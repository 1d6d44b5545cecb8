// TLS and mTLS with real certificates (made by openssl) over real sockets:
// what is let in, what is refused, and which identity a caller proves.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startSwitchyard, type ServiceName, type Switchyard } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient, type Client } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { loadClientTls, type ClientTlsOptions } from "../../src/toolkit/tls/client-tls.js";
import type { ServerTlsOptions } from "../../src/toolkit/tls/server-tls.js";
import { makeCertSet, makeOpensslSelfSigned, ORDER_SERVICE_ID, type CertSet } from "../support/certs.js";
import { Cleanup } from "../support/cli-process.js";

const HOST = "127.0.0.1";

/** The peer identities a server saw, per method, recorded by an interceptor. */
function identityRecorder(): { readonly interceptor: ServerInterceptor; readonly seen: Array<{ method: string; identity: string | undefined }> } {
  const seen: Array<{ method: string; identity: string | undefined }> = [];
  return {
    seen,
    interceptor: (call, next) => {
      seen.push({ method: call.method, identity: call.context.peerIdentity });
      return next();
    },
  };
}

async function startServer(
  scope: Cleanup,
  options: {
    readonly tls?: ServerTlsOptions;
    readonly services?: readonly ServiceName[];
    readonly userServiceTarget?: string;
    readonly userServiceTls?: ClientTlsOptions;
    readonly interceptors?: readonly ServerInterceptor[];
  },
): Promise<Switchyard> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-tls-data-"));
  scope.after(() => fs.rm(dataDir, { recursive: true, force: true }));
  const server = await startSwitchyard({
    services: options.services ?? ["user", "order"],
    host: HOST,
    port: 0,
    dataDir,
    drainTimeoutMs: 500,
    logger: silentLogger(),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.userServiceTarget ? { userServiceTarget: options.userServiceTarget } : {}),
    ...(options.userServiceTls ? { userServiceTls: options.userServiceTls } : {}),
    ...(options.interceptors ? { interceptors: options.interceptors } : {}),
  });
  scope.after(() => server.close());
  return server;
}

interface Clients {
  readonly user: Client<typeof UserServiceDefinition>;
  readonly order: Client<typeof OrderServiceDefinition>;
}

/** Typed clients on one new channel to `host:port`; plaintext without `tls`. No retries: a refusal shows at once. */
async function connect(scope: Cleanup, port: number, tls?: ClientTlsOptions, host = HOST): Promise<Clients> {
  const loaded = tls ? await loadClientTls(tls) : undefined;
  const transport = createGrpcTransport({
    target: `${host}:${port}`,
    services: [UserServiceDefinition, OrderServiceDefinition],
    retry: false,
    ...(loaded ? { credentials: loaded.credentials, channelOptions: loaded.channelOptions } : {}),
  });
  scope.after(() => {
    transport.close();
    loaded?.close();
  });
  return {
    user: createClient(UserServiceDefinition, transport, { defaultTimeoutMs: 5_000 }),
    order: createClient(OrderServiceDefinition, transport, { defaultTimeoutMs: 5_000 }),
  };
}

async function createUser(clients: Clients): Promise<string> {
  const userId = `user-${randomUUID()}`;
  await clients.user.createUser({ userId, name: "Ada Lovelace", email: "ada@example.com" });
  return userId;
}

async function assertRefused(call: Promise<unknown>, code: Code, message?: RegExp): Promise<ClientError> {
  const error = await call.then(
    () => assert.fail("the call succeeded but must be refused"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof ClientError, `expected a ClientError, got ${String(error)}`);
  assert.equal(Code[error.code], Code[code], `status: ${error.message}`);
  if (message) assert.match(error.message, message);
  return error;
}

describe("TLS: server certificate only", { concurrency: true }, () => {
  const scope = new Cleanup();
  let certs: CertSet;
  let server: Switchyard;
  const recorder = identityRecorder();

  before(async () => {
    certs = await makeCertSet(scope);
    server = await startServer(scope, { tls: { certFile: certs.server, keyFile: certs.serverKey }, interceptors: [recorder.interceptor] });
  });
  after(() => scope.run());

  it("a TLS client that trusts the CA calls every service", async () => {
    const clients = await connect(scope, server.port, { caFile: certs.ca });
    const userId = await createUser(clients);
    assert.equal((await clients.user.getUser({ userId })).name, "Ada Lovelace");
    const order = await clients.order.createOrder({ orderId: `order-${randomUUID()}`, userId });
    assert.equal(order.userId, userId);
  });

  it("verifies the server by DNS name too (localhost is in the SAN)", async () => {
    const clients = await connect(scope, server.port, { caFile: certs.ca }, "localhost");
    await createUser(clients);
  });

  it("without a client certificate, the call context has no peer identity", async () => {
    const clients = await connect(scope, server.port, { caFile: certs.ca });
    const userId = await createUser(clients);
    await clients.user.getUser({ userId });
    const seen = recorder.seen.filter((entry) => entry.method === "GetUser");
    assert.ok(seen.length > 0, "the interceptor saw no GetUser call");
    assert.ok(seen.every((entry) => entry.identity === undefined), JSON.stringify(seen));
  });

  it("a plaintext client is refused: UNAVAILABLE", async () => {
    const clients = await connect(scope, server.port);
    await assertRefused(clients.user.getUser({ userId: "user-1" }), Code.UNAVAILABLE);
  });

  it("a client that does not trust the server's CA is refused: UNAVAILABLE", async () => {
    const other = await makeCertSet(scope);
    const clients = await connect(scope, server.port, { caFile: other.ca });
    await assertRefused(clients.user.getUser({ userId: "user-1" }), Code.UNAVAILABLE, /certificate/i);
  });

  it("a TLS client to a plaintext server is refused: UNAVAILABLE", async () => {
    const plain = await startServer(scope, {});
    const clients = await connect(scope, plain.port, { caFile: certs.ca });
    await assertRefused(clients.user.getUser({ userId: "user-1" }), Code.UNAVAILABLE);
  });
});

describe("TLS: the server name check (SAN)", { concurrency: true }, () => {
  const scope = new Cleanup();
  let wrong: CertSet;
  let server: Switchyard;

  before(async () => {
    // A certificate from a trusted CA, for a name that is not the one dialled.
    wrong = await makeCertSet(scope, { serverNames: ["users.internal.example"] });
    server = await startServer(scope, { tls: { certFile: wrong.server, keyFile: wrong.serverKey } });
  });
  after(() => scope.run());

  it("refuses a server whose certificate does not name the dialled address", async () => {
    const byIp = await connect(scope, server.port, { caFile: wrong.ca });
    await assertRefused(byIp.user.getUser({ userId: "user-1" }), Code.UNAVAILABLE, /altnames|does not match|not in the cert/i);
    const byName = await connect(scope, server.port, { caFile: wrong.ca }, "localhost");
    await assertRefused(byName.user.getUser({ userId: "user-1" }), Code.UNAVAILABLE, /altnames|does not match|not in the cert/i);
  });

  it("refuses it when the expected name (serverName) is another one", async () => {
    const clients = await connect(scope, server.port, { caFile: wrong.ca, serverName: "orders.internal.example" });
    await assertRefused(clients.user.getUser({ userId: "user-1" }), Code.UNAVAILABLE, /altnames|does not match|not in the cert/i);
  });

  it("accepts it when serverName is the name in its SAN", async () => {
    const clients = await connect(scope, server.port, { caFile: wrong.ca, serverName: "users.internal.example" });
    await createUser(clients);
  });
});

describe("mTLS: client certificates required", { concurrency: true }, () => {
  const scope = new Cleanup();
  let certs: CertSet;
  let server: Switchyard;
  const recorder = identityRecorder();

  before(async () => {
    certs = await makeCertSet(scope);
    server = await startServer(scope, {
      tls: { certFile: certs.server, keyFile: certs.serverKey, clientCaFile: certs.ca },
      interceptors: [recorder.interceptor],
    });
  });
  after(() => scope.run());

  it("a client with a certificate from the CA gets in, and its SAN is the caller's identity", async () => {
    const clients = await connect(scope, server.port, { caFile: certs.ca, certFile: certs.client, keyFile: certs.clientKey });
    const userId = await createUser(clients);
    await clients.user.getUser({ userId });
    const seen = recorder.seen.filter((entry) => entry.method === "GetUser");
    assert.ok(seen.length > 0);
    assert.ok(seen.every((entry) => entry.identity === ORDER_SERVICE_ID), JSON.stringify(seen));
  });

  it("a client without a certificate is refused: UNAVAILABLE", async () => {
    const clients = await connect(scope, server.port, { caFile: certs.ca });
    await assertRefused(clients.user.getUser({ userId: "user-1" }), Code.UNAVAILABLE);
  });

  it("a client whose certificate another CA signed is refused: UNAVAILABLE", async () => {
    const other = await makeCertSet(scope);
    // It trusts the right server CA; only its own certificate is foreign.
    const clients = await connect(scope, server.port, { caFile: certs.ca, certFile: other.client, keyFile: other.clientKey });
    await assertRefused(clients.user.getUser({ userId: "user-1" }), Code.UNAVAILABLE);
  });

  it("a plaintext client is refused: UNAVAILABLE", async () => {
    const clients = await connect(scope, server.port);
    await assertRefused(clients.user.getUser({ userId: "user-1" }), Code.UNAVAILABLE);
  });

  it("the identity is the DNS SAN when the certificate has no URI SAN", async () => {
    const dnsOnly = await makeCertSet(scope, { clientNames: ["billing-service"] });
    const mixed = await startServer(scope, {
      tls: { certFile: certs.server, keyFile: certs.serverKey, clientCaFile: dnsOnly.ca },
      interceptors: [recorder.interceptor],
    });
    const clients = await connect(scope, mixed.port, { caFile: certs.ca, certFile: dnsOnly.client, keyFile: dnsOnly.clientKey });
    await createUser(clients);
    assert.ok(recorder.seen.some((entry) => entry.method === "CreateUser" && entry.identity === "billing-service"), JSON.stringify(recorder.seen));
  });
});

describe("mTLS in the split topology: OrderService calls UserService", { concurrency: true }, () => {
  const scope = new Cleanup();
  let certs: CertSet;
  let userServer: Switchyard;
  let orderServer: Switchyard;
  const userSide = identityRecorder();
  const serverTls = (): ServerTlsOptions => ({ certFile: certs.server, keyFile: certs.serverKey, clientCaFile: certs.ca });
  const asOrderService = (): ClientTlsOptions => ({ caFile: certs.ca, certFile: certs.client, keyFile: certs.clientKey });

  before(async () => {
    certs = await makeCertSet(scope);
    userServer = await startServer(scope, { services: ["user"], tls: serverTls(), interceptors: [userSide.interceptor] });
    orderServer = await startServer(scope, {
      services: ["order"],
      tls: serverTls(),
      userServiceTarget: `localhost:${userServer.port}`,
      userServiceTls: asOrderService(),
    });
  });
  after(() => scope.run());

  it("CreateOrder works end to end, and UserService sees OrderService's identity", async () => {
    const users = await connect(scope, userServer.port, asOrderService());
    const orders = await connect(scope, orderServer.port, asOrderService());
    const userId = await createUser(users);
    const orderId = `order-${randomUUID()}`;
    const order = await orders.order.createOrder({ orderId, userId });
    assert.equal(order.orderId, orderId);
    assert.equal((await orders.order.getOrderByUser({ userId })).orderId, orderId);
    const lookups = userSide.seen.filter((entry) => entry.method === "GetUser");
    assert.ok(lookups.length > 0, "OrderService did not call UserService.GetUser");
    assert.ok(lookups.every((entry) => entry.identity === ORDER_SERVICE_ID), JSON.stringify(lookups));
  });

  it("an OrderService without a client certificate cannot reach UserService: UNAVAILABLE", async () => {
    const noCert = await startServer(scope, {
      services: ["order"],
      tls: serverTls(),
      userServiceTarget: `localhost:${userServer.port}`,
      userServiceTls: { caFile: certs.ca },
    });
    const users = await connect(scope, userServer.port, asOrderService());
    const orders = await connect(scope, noCert.port, asOrderService());
    const userId = await createUser(users);
    const error = await assertRefused(orders.order.createOrder({ orderId: `order-${randomUUID()}`, userId }), Code.UNAVAILABLE);
    assert.equal(error.reason, "DEPENDENCY_UNAVAILABLE");
  });

  it("an OrderService that expects another server name refuses UserService's certificate", async () => {
    const wrongName = await startServer(scope, {
      services: ["order"],
      tls: serverTls(),
      userServiceTarget: `localhost:${userServer.port}`,
      userServiceTls: { ...asOrderService(), serverName: "users.prod.example" },
    });
    const users = await connect(scope, userServer.port, asOrderService());
    const orders = await connect(scope, wrongName.port, asOrderService());
    const userId = await createUser(users);
    await assertRefused(orders.order.createOrder({ orderId: `order-${randomUUID()}`, userId }), Code.UNAVAILABLE);
  });
});

describe("TLS: certificates from plain openssl and bad files", { concurrency: true }, () => {
  const scope = new Cleanup();
  after(() => scope.run());

  it("serves a self-signed RSA certificate made with one openssl command", async () => {
    const { cert, key } = await makeOpensslSelfSigned(scope);
    const server = await startServer(scope, { tls: { certFile: cert, keyFile: key } });
    const clients = await connect(scope, server.port, { caFile: cert }, "localhost");
    await createUser(clients);
  });

  it("refuses to start with a missing certificate file, naming it", async () => {
    const certs = await makeCertSet(scope);
    const missing = path.join(certs.dir, "nope.pem");
    await assert.rejects(
      startServer(scope, { tls: { certFile: missing, keyFile: certs.serverKey } }),
      (error: Error) => error.message.includes(missing) && /no such file/.test(error.message),
    );
  });

  it("refuses to start with a key that does not belong to the certificate", async () => {
    const certs = await makeCertSet(scope);
    await assert.rejects(
      startServer(scope, { tls: { certFile: certs.server, keyFile: certs.clientKey } }),
      /private key does not belong to the certificate/,
    );
  });

  it("refuses to start with a CA file that holds no certificate", async () => {
    const certs = await makeCertSet(scope);
    await assert.rejects(
      startServer(scope, { tls: { certFile: certs.server, keyFile: certs.serverKey, clientCaFile: certs.caKey } }),
      /cannot use TLS CA certificate .*ca-key\.pem/,
    );
  });
});
