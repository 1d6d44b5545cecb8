// Authenticated callers and per-method authorization over real sockets:
// bearer tokens (HS256, RS256, ES256 from a JWKS) and mTLS identities, the
// one access policy (deny by default), and the production profile.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { loadFileDescriptorSetFromBuffer, loadSync } from "@grpc/proto-loader";
import { ORDER_SERVICE_IDENTITY, switchyardAccessPolicy } from "../../src/app/access-policy.js";
import { startSwitchyard, type SwitchyardOptions, type Switchyard } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { ruleFor } from "../../src/toolkit/auth/access-policy.js";
import { bearerTokenInterceptor } from "../../src/toolkit/auth/bearer-token.js";
import { createClient, type Client } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import type { Principal } from "../../src/toolkit/rpc/call-context.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { loadClientTls, type ClientTlsOptions } from "../../src/toolkit/tls/client-tls.js";
import { makeCertSet, type CertSet } from "../support/certs.js";
import { Cleanup, REPO_ROOT } from "../support/cli-process.js";
import { AUDIENCE, hs256, ISSUER, makeTestKeys, signToken, type TestKeys } from "../support/tokens.js";

const HOST = "127.0.0.1";

async function tempDir(scope: Cleanup, prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  scope.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function start(scope: Cleanup, options: Omit<SwitchyardOptions, "port" | "dataDir" | "logger">): Promise<Switchyard> {
  const server = await startSwitchyard({
    host: HOST,
    port: 0,
    dataDir: await tempDir(scope, "switchyard-auth-data-"),
    drainTimeoutMs: 500,
    logger: silentLogger(),
    ...options,
  });
  scope.after(() => server.close());
  return server;
}

function authFiles(keys: TestKeys): NonNullable<SwitchyardOptions["auth"]> {
  return {
    secretFile: keys.secretFile,
    publicKeyFiles: [keys.rsaPublicKeyFile],
    jwksFile: keys.jwksFile,
    issuer: ISSUER,
    audience: AUDIENCE,
  };
}

interface Clients {
  readonly user: Client<typeof UserServiceDefinition>;
  readonly order: Client<typeof OrderServiceDefinition>;
}

/** Typed clients on a new channel, sending `token` (when given) with every call. No retries. */
async function connect(scope: Cleanup, port: number, token?: string, tls?: ClientTlsOptions, host = HOST): Promise<Clients> {
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
  const interceptors = token === undefined ? [] : [bearerTokenInterceptor(token)];
  return {
    user: createClient(UserServiceDefinition, transport, { defaultTimeoutMs: 10_000, interceptors }),
    order: createClient(OrderServiceDefinition, transport, { defaultTimeoutMs: 10_000, interceptors }),
  };
}

async function refused(call: Promise<unknown>, code: Code, reason?: string): Promise<ClientError> {
  const error = await call.then(
    () => assert.fail(`the call succeeded but must be refused with ${Code[code]}`),
    (error: unknown) => error,
  );
  assert.ok(error instanceof ClientError, `expected a ClientError, got ${String(error)}`);
  assert.equal(Code[error.code], Code[code], `status: ${error.message}`);
  if (reason !== undefined) assert.equal(error.reason, reason, error.message);
  return error;
}

/** grpc.health.v1.Health/Check for the whole server, over a raw channel with no credentials. */
async function healthCheck(scope: Cleanup, port: number, credentials = grpc.credentials.createInsecure()): Promise<string> {
  const channel = new grpc.Client(`${HOST}:${port}`, credentials);
  scope.after(() => channel.close());
  return new Promise((resolve, reject) => {
    channel.makeUnaryRequest<Buffer, Buffer>(
      "/grpc.health.v1.Health/Check",
      (bytes) => bytes,
      (bytes) => bytes,
      Buffer.alloc(0),
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (error, response) => (error ? reject(error) : resolve(response?.[1] === 1 ? "SERVING" : `status ${response?.[1]}`)),
    );
  });
}

/** Records the principal and identity of every call the server serves. */
function recorder(): { readonly interceptor: ServerInterceptor; readonly seen: Array<{ method: string; principal?: Principal; peerIdentity?: string }> } {
  const seen: Array<{ method: string; principal?: Principal; peerIdentity?: string }> = [];
  return {
    seen,
    interceptor: (call, next) => {
      seen.push({
        method: call.method,
        ...(call.context.principal ? { principal: call.context.principal } : {}),
        ...(call.context.peerIdentity ? { peerIdentity: call.context.peerIdentity } : {}),
      });
      return next();
    },
  };
}

// ---- reflection, as a stock client does it: grpc.reflection.v1 over grpc-js ----

const REFLECTION_PROTO = path.join(REPO_ROOT, "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
const HEALTH_PROTO = path.join(REPO_ROOT, "node_modules/grpc-health-check/proto/health/v1/health.proto");

interface ReflectionResponse {
  listServicesResponse?: { service: Array<{ name: string }> };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/** Every method (`pkg.Service/Method`) the server lists through grpc.reflection.v1. */
async function methodsByReflection(port: number): Promise<string[]> {
  const definition = grpc.loadPackageDefinition(loadSync(REFLECTION_PROTO, { keepCase: false, defaults: true }));
  const reflection = (definition.grpc as grpc.GrpcObject).reflection as grpc.GrpcObject;
  const ServerReflection = (reflection.v1 as grpc.GrpcObject).ServerReflection as grpc.ServiceClientConstructor;
  const client = new ServerReflection(`${HOST}:${port}`, grpc.credentials.createInsecure());
  try {
    const ask = (request: Record<string, string>): Promise<ReflectionResponse> =>
      new Promise((resolve, reject) => {
        const stream = (client as unknown as { ServerReflectionInfo(options: grpc.CallOptions): grpc.ClientDuplexStream<unknown, ReflectionResponse> })
          .ServerReflectionInfo({ deadline: Date.now() + 10_000 });
        stream.once("data", (response: ReflectionResponse) => {
          resolve(response);
          stream.end();
        });
        stream.once("error", reject);
        stream.write(request);
      });
    const listed = await ask({ listServices: "" });
    const services = (listed.listServicesResponse?.service ?? []).map((service) => service.name);
    assert.ok(services.length > 0, `reflection lists no service: ${JSON.stringify(listed)}`);
    const methods = new Set<string>();
    for (const service of services) {
      const files = await ask({ fileContainingSymbol: service });
      assert.ok(files.fileDescriptorResponse, `no descriptor for ${service}: ${JSON.stringify(files.errorResponse)}`);
      // A FileDescriptorSet is its files, each as field 1.
      const set = Buffer.concat(
        files.fileDescriptorResponse.fileDescriptorProto.flatMap((file) => [Buffer.from([0x0a]), varint(file.length), file]),
      );
      const packageDefinition = loadFileDescriptorSetFromBuffer(set);
      const serviceDefinition = packageDefinition[service] as Record<string, { path: string }> | undefined;
      assert.ok(serviceDefinition, `${service} is not in its own descriptor`);
      for (const method of Object.values(serviceDefinition)) methods.add(method.path.slice(1));
    }
    return [...methods].sort();
  } finally {
    client.close();
  }
}

/** The methods of the services the engines serve outside the dispatcher, from their own protos. */
function methodsOfProto(file: string, service: string): string[] {
  const definition = loadSync(file)[service] as Record<string, { path: string }>;
  return Object.values(definition).map((method) => method.path.slice(1));
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

// ---------------------------------------------------------------------------

describe("bearer tokens, one process hosting both services", { concurrency: true }, () => {
  const scope = new Cleanup();
  let keys: TestKeys;
  let server: Switchyard;
  const seen = recorder();
  let admin: Clients;

  before(async () => {
    keys = await makeTestKeys(await tempDir(scope, "switchyard-auth-keys-"));
    server = await start(scope, { services: ["user", "order"], auth: authFiles(keys), interceptors: [seen.interceptor] });
    admin = await connect(scope, server.port, await hs256(keys, { sub: "root", roles: ["admin"] }));
  });
  after(() => scope.run());

  async function newUser(): Promise<string> {
    const userId = `user-${randomUUID()}`;
    await admin.user.createUser({ userId, name: "Ada Lovelace", email: "ada@example.com" });
    return userId;
  }

  it("says what auth it enforces, without key material", () => {
    assert.match(server.auth, /^bearer tokens \(algorithms HS256, RS256.*ES256.*; issuer https:\/\/issuer\.test; audience switchyard\)$/);
  });

  it("without a token every method of our services is UNAUTHENTICATED, with what to send", async () => {
    const anonymous = await connect(scope, server.port);
    const userId = await newUser();
    const calls: Array<Promise<unknown>> = [
      anonymous.user.getUser({ userId }),
      anonymous.user.createUser({ userId: `user-${randomUUID()}`, name: "A", email: "a@example.com" }),
      anonymous.order.createOrder({ orderId: `order-${randomUUID()}`, userId }),
      anonymous.order.getOrderByUser({ userId }),
      anonymous.order.listOrdersByUser({ userId, limit: 0 }),
    ];
    for (const call of calls) {
      const error = await refused(call, Code.UNAUTHENTICATED, "CREDENTIALS_MISSING");
      assert.match(error.message, /authorization: Bearer <JWT>/);
    }
  });

  it("health answers without a token", async () => {
    assert.equal(await healthCheck(scope, server.port), "SERVING");
  });

  it("expired, wrongly signed, wrong-audience and malformed tokens are UNAUTHENTICATED, and the token is never echoed", async () => {
    const userId = await newUser();
    const bad: Array<{ token: string; reason: string }> = [
      { token: await hs256(keys, { scope: "users:read", expiresIn: -3600 }), reason: "TOKEN_EXPIRED" },
      { token: await signToken(new TextEncoder().encode("a-secret-nobody-here-knows-of-32b"), "HS256", { scope: "users:read" }), reason: "TOKEN_SIGNATURE_INVALID" },
      { token: await hs256(keys, { scope: "users:read", aud: "billing" }), reason: "TOKEN_AUDIENCE_MISMATCH" },
      { token: await hs256(keys, { scope: "users:read", iss: "https://elsewhere.test" }), reason: "TOKEN_ISSUER_MISMATCH" },
      { token: "definitely-not-a-jwt", reason: "TOKEN_MALFORMED" },
    ];
    for (const { token, reason } of bad) {
      const clients = await connect(scope, server.port, token);
      const error = await refused(clients.user.getUser({ userId }), Code.UNAUTHENTICATED, reason);
      for (const part of token.split(".")) assert.ok(part.length < 8 || !error.message.includes(part), `the status echoes the token: ${error.message}`);
      assert.ok(!JSON.stringify(error.metadata).includes(token.slice(-16)), "the status details echo the token");
    }
  });

  it("a valid token without the scope is PERMISSION_DENIED, naming what is needed", async () => {
    const userId = await newUser();
    const reader = await connect(scope, server.port, await hs256(keys, { sub: "reader", scope: "users:read" }));
    const error = await refused(
      reader.user.createUser({ userId: `user-${randomUUID()}`, name: "B", email: "b@example.com" }),
      Code.PERMISSION_DENIED,
      "MISSING_GRANT",
    );
    assert.match(error.message, /CreateUser needs scope users:write or role admin/);
    await refused(reader.order.getOrderByUser({ userId }), Code.PERMISSION_DENIED);
    await refused(reader.order.createOrder({ orderId: `order-${randomUUID()}`, userId }), Code.PERMISSION_DENIED);
  });

  it("the right scope lets the call through, and the handler's context has the principal", async () => {
    const userId = await newUser();
    const reader = await connect(scope, server.port, await hs256(keys, { sub: "reader-2", scope: "users:read orders:read" }));
    assert.equal((await reader.user.getUser({ userId })).name, "Ada Lovelace");
    const entry = seen.seen.find((call) => call.method === "GetUser" && call.principal?.subject === "reader-2");
    assert.ok(entry, JSON.stringify(seen.seen));
    assert.deepEqual(entry.principal, { subject: "reader-2", issuer: ISSUER, scopes: ["users:read", "orders:read"], roles: [] });
  });

  it("CreateOrder needs only orders:write: its in-process GetUser passes as OrderService", async () => {
    const userId = await newUser();
    const writer = await connect(scope, server.port, await hs256(keys, { sub: "shop", scope: "orders:write orders:read" }));
    const orderId = `order-${randomUUID()}`;
    assert.equal((await writer.order.createOrder({ orderId, userId })).orderId, orderId);
    assert.equal((await writer.order.getOrderByUser({ userId })).orderId, orderId);
    assert.equal((await writer.order.listOrdersByUser({ userId, limit: 0 })).orders.length, 1);
    // The caller's token may not read users itself.
    await refused(writer.user.getUser({ userId }), Code.PERMISSION_DENIED);
    const inner = seen.seen.filter((call) => call.method === "GetUser" && call.peerIdentity === ORDER_SERVICE_IDENTITY);
    assert.ok(inner.length > 0, "the in-process GetUser did not carry OrderService's identity");
    assert.ok(inner.every((call) => call.principal === undefined), "the caller's principal leaked into the in-process call");
  });

  it("accepts RS256 (PEM public key) and ES256 (JWKS) tokens", async () => {
    const userId = await newUser();
    const rs = await connect(scope, server.port, await signToken(keys.rsa, "RS256", { scp: ["users:read"] }));
    assert.equal((await rs.user.getUser({ userId })).userId, userId);
    const es = await connect(scope, server.port, await signToken(keys.ec, "ES256", { scope: "users:read" }, "ec-1"));
    assert.equal((await es.user.getUser({ userId })).userId, userId);
  });

  it("a role grants what the policy gives it", async () => {
    const userId = await newUser();
    const nobody = await connect(scope, server.port, await hs256(keys, { roles: ["auditor"] }));
    await refused(nobody.user.getUser({ userId }), Code.PERMISSION_DENIED);
    assert.equal((await admin.user.getUser({ userId })).userId, userId);
  });

  it("every method the server lists through reflection, and every health and reflection method, has a rule", async () => {
    const listed = await methodsByReflection(server.port);
    assert.deepEqual(listed, [
      "service.OrderService/CreateOrder",
      "service.OrderService/GetOrderByUser",
      "service.OrderService/ListOrdersByUser",
      "service.UserService/CreateUser",
      "service.UserService/GetUser",
    ]);
    const outsideTheDispatcher = [
      ...methodsOfProto(HEALTH_PROTO, "grpc.health.v1.Health"),
      ...methodsOfProto(REFLECTION_PROTO, "grpc.reflection.v1.ServerReflection"),
      "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ];
    for (const profile of ["development", "production"] as const) {
      const policy = switchyardAccessPolicy(profile);
      const unruled = [...listed, ...outsideTheDispatcher].filter((method) => ruleFor(policy, method) === undefined);
      assert.deepEqual(unruled, [], `methods without an access rule in the ${profile} profile`);
      const stale = Object.keys(policy).filter((method) => ![...listed, ...outsideTheDispatcher].includes(method));
      assert.deepEqual(stale, [], `rules for methods nobody serves in the ${profile} profile`);
    }
  });
});

describe("auth is off by default", () => {
  const scope = new Cleanup();
  after(() => scope.run());

  it("without auth options, callers need no token (local development as before)", async () => {
    const server = await start(scope, { services: ["user", "order"] });
    assert.equal(server.auth, "off");
    const clients = await connect(scope, server.port);
    const userId = `user-${randomUUID()}`;
    await clients.user.createUser({ userId, name: "A", email: "a@example.com" });
    await clients.order.createOrder({ orderId: `order-${randomUUID()}`, userId });
  });
});

describe("mTLS identities and tokens, OrderService and UserService in separate processes", { concurrency: true }, () => {
  const scope = new Cleanup();
  let keys: TestKeys;
  let certs: CertSet;
  let billing: CertSet;
  let caBundle: string;
  let userServer: Switchyard;
  let orderServer: Switchyard;
  const userSide = recorder();
  const asOrderService = (): ClientTlsOptions => ({ caFile: certs.ca, certFile: certs.client, keyFile: certs.clientKey });
  const asBilling = (): ClientTlsOptions => ({ caFile: certs.ca, certFile: billing.client, keyFile: billing.clientKey });

  before(async () => {
    keys = await makeTestKeys(await tempDir(scope, "switchyard-auth-keys-"));
    // OrderService's certificate, and another service's from another CA; the servers trust both CAs.
    [certs, billing] = await Promise.all([makeCertSet(scope), makeCertSet(scope, { clientNames: ["spiffe://switchyard/billing"] })]);
    caBundle = path.join(certs.dir, "ca-bundle.pem");
    await fs.writeFile(caBundle, `${await fs.readFile(certs.ca, "utf8")}\n${await fs.readFile(billing.ca, "utf8")}`);
    const tls = { certFile: certs.server, keyFile: certs.serverKey, clientCaFile: caBundle };
    userServer = await start(scope, { services: ["user"], tls, auth: authFiles(keys), interceptors: [userSide.interceptor] });
    orderServer = await start(scope, {
      services: ["order"],
      tls,
      auth: authFiles(keys),
      userServiceTarget: `localhost:${userServer.port}`,
      userServiceTls: asOrderService(),
    });
  });
  after(() => scope.run());

  it("CreateOrder works end to end: the caller's token at OrderService, OrderService's certificate at UserService", async () => {
    const users = await connect(scope, userServer.port, await hs256(keys, { scope: "users:write" }), asBilling());
    const userId = `user-${randomUUID()}`;
    await users.user.createUser({ userId, name: "Grace Hopper", email: "grace@example.com" });
    const shop = await connect(scope, orderServer.port, await hs256(keys, { sub: "shop", scope: "orders:write" }), asBilling());
    const orderId = `order-${randomUUID()}`;
    assert.equal((await shop.order.createOrder({ orderId, userId })).orderId, orderId);
    const lookups = userSide.seen.filter((call) => call.method === "GetUser");
    assert.ok(lookups.some((call) => call.peerIdentity === ORDER_SERVICE_IDENTITY && call.principal === undefined), JSON.stringify(lookups));
  });

  it("OrderService's identity may call GetUser, and nothing else, without a token", async () => {
    const withToken = await connect(scope, userServer.port, await hs256(keys, { scope: "users:write" }), asBilling());
    const userId = `user-${randomUUID()}`;
    await withToken.user.createUser({ userId, name: "A", email: "a@example.com" });
    const orderService = await connect(scope, userServer.port, undefined, asOrderService());
    assert.equal((await orderService.user.getUser({ userId })).userId, userId);
    const error = await refused(
      orderService.user.createUser({ userId: `user-${randomUUID()}`, name: "B", email: "b@example.com" }),
      Code.PERMISSION_DENIED,
    );
    assert.match(error.message, /CreateUser needs scope users:write or role admin; the caller has none of them/);
  });

  it("another service's identity may not call GetUser: PERMISSION_DENIED", async () => {
    const other = await connect(scope, userServer.port, undefined, asBilling());
    await refused(other.user.getUser({ userId: "user-1" }), Code.PERMISSION_DENIED, "MISSING_GRANT");
  });

  it("an OrderService presenting another identity cannot place orders", async () => {
    const impostor = await start(scope, {
      services: ["order"],
      tls: { certFile: certs.server, keyFile: certs.serverKey, clientCaFile: caBundle },
      auth: authFiles(keys),
      userServiceTarget: `localhost:${userServer.port}`,
      userServiceTls: asBilling(),
    });
    const users = await connect(scope, userServer.port, await hs256(keys, { scope: "users:write" }), asBilling());
    const userId = `user-${randomUUID()}`;
    await users.user.createUser({ userId, name: "A", email: "a@example.com" });
    const shop = await connect(scope, impostor.port, await hs256(keys, { scope: "orders:write" }), asBilling());
    // UserService refuses it; to the caller that is this server's fault, reported without details.
    const error = await refused(shop.order.createOrder({ orderId: `order-${randomUUID()}`, userId }), Code.INTERNAL);
    assert.equal(error.message, "internal error");
  });
});

describe("the production profile", { concurrency: true }, () => {
  const scope = new Cleanup();
  let keys: TestKeys;
  let certs: CertSet;
  after(() => scope.run());
  before(async () => {
    keys = await makeTestKeys(await tempDir(scope, "switchyard-auth-keys-"));
    certs = await makeCertSet(scope);
  });

  it("refuses to start without TLS, without auth, or without an audience", async () => {
    const tls = { certFile: certs.server, keyFile: certs.serverKey };
    await assert.rejects(start(scope, { services: ["user"], profile: "production", auth: authFiles(keys) }), /production profile needs TLS/);
    await assert.rejects(start(scope, { services: ["user"], profile: "production", tls }), /production profile needs bearer-token auth/);
    await assert.rejects(
      start(scope, { services: ["user"], profile: "production", tls, auth: { secretFile: keys.secretFile } }),
      /production profile needs the audience/,
    );
  });

  it("with TLS and auth it serves, health answers anyone, and reflection is off", async () => {
    const server = await start(scope, {
      services: ["user", "order"],
      profile: "production",
      tls: { certFile: certs.server, keyFile: certs.serverKey },
      auth: authFiles(keys),
    });
    const tlsCredentials = grpc.credentials.createSsl(await fs.readFile(certs.ca));
    assert.equal(await healthCheck(scope, server.port, tlsCredentials), "SERVING");
    const clients = await connect(scope, server.port, await hs256(keys, { roles: ["admin"] }), { caFile: certs.ca });
    const userId = `user-${randomUUID()}`;
    await clients.user.createUser({ userId, name: "A", email: "a@example.com" });
    await clients.order.createOrder({ orderId: `order-${randomUUID()}`, userId });
    const anonymous = await connect(scope, server.port, undefined, { caFile: certs.ca });
    await refused(anonymous.user.getUser({ userId }), Code.UNAUTHENTICATED);

    const channel = new grpc.Client(`${HOST}:${server.port}`, tlsCredentials);
    scope.after(() => channel.close());
    const code = await new Promise<number>((resolve) => {
      const stream = channel.makeBidiStreamRequest<Buffer, Buffer>(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        (bytes) => bytes,
        (bytes) => bytes,
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
      );
      stream.on("data", () => undefined);
      stream.on("error", (error: grpc.ServiceError) => resolve(error.code));
      stream.on("end", () => resolve(grpc.status.OK));
      // list_services: ""
      stream.write(Buffer.from([0x3a, 0x00]));
      stream.end();
    });
    assert.equal(grpc.status[code], "UNIMPLEMENTED");
  });
});

describe("no leaks in what a caller sees", () => {
  const scope = new Cleanup();
  after(() => scope.run());

  it("a failure with SQL and a stack reaches the caller as INTERNAL \"internal error\", details and all", async () => {
    const keys = await makeTestKeys(await tempDir(scope, "switchyard-auth-keys-"));
    const leaky: ServerInterceptor = (call, next) => {
      if (call.method !== "GetUser") return next();
      const error = new Error(`SQLITE_ERROR: near "SELEKT": syntax error in SELEKT * FROM users WHERE id = 'x' -- ${Buffer.from(keys.secret).toString("utf8")}`);
      throw error;
    };
    const server = await start(scope, { services: ["user"], auth: authFiles(keys), interceptors: [leaky] });
    const token = await hs256(keys, { scope: "users:read" });
    const channel = new grpc.Client(`${HOST}:${server.port}`, grpc.credentials.createInsecure());
    scope.after(() => channel.close());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    const error = await new Promise<grpc.ServiceError>((resolve, reject) => {
      channel.makeUnaryRequest<Buffer, Buffer>(
        "/service.UserService/GetUser",
        (bytes) => bytes,
        (bytes) => bytes,
        Buffer.from([0x0a, 0x01, 0x78]),
        metadata,
        { deadline: Date.now() + 10_000 },
        (failure) => (failure ? resolve(failure) : reject(new Error("the call succeeded"))),
      );
    });
    assert.equal(grpc.status[error.code], "INTERNAL");
    assert.equal(error.details, "internal error");
    // Every trailer, binary ones included, as text: no SQL, no stack frame, no secret, no token.
    const trailers = Object.entries(error.metadata.getMap())
      .map(([key, value]) => `${key}: ${typeof value === "string" ? value : Buffer.from(value).toString("latin1")}`)
      .join("\n");
    for (const leak of [/SELEKT/, /SQLITE/, /\n\s+at /, /\.ts:\d+/, new RegExp(Buffer.from(keys.secret).toString("utf8")), new RegExp(token.split(".")[2] as string)]) {
      assert.doesNotMatch(`${error.details}\n${trailers}`, leak);
    }
  });
});
