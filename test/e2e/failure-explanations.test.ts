/**
 * Issue 6, "explain a slow or failed request": a DEADLINE_EXCEEDED or an
 * UNAVAILABLE that reaches a caller says which hop spent the budget or failed
 * (message and google.rpc.ErrorInfo), without leaking the hop's own error
 * text, and the trace shows it on the spans of that hop.
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startSwitchyard, type Switchyard, type SwitchyardOptions } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { type Client, createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import type { Transport } from "../../src/toolkit/client/transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../support/otlp-receiver.js";

const HOST = "127.0.0.1";
/** OrderService's --max-deadline: the budget the held GetUser spends. */
const BUDGET_MS = 600;

/** A caller's sampled W3C trace context. */
function callerContext(): { traceId: string; traceparent: string } {
  const traceId = randomBytes(16).toString("hex");
  return { traceId, traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` };
}

/** How the stalled GetUser ends once its call is aborted. */
type Stall = "honours its signal" | "ignores its signal";

/**
 * Holds UserService.GetUser for one user id until the call is aborted (its
 * deadline passes or it is cancelled). Then it either gives up with the
 * abort's reason, as a handler that honours its signal does (an abortable
 * query, say), or carries on and answers, as a slow query that cannot be
 * stopped does.
 */
function stallGetUser(userId: string, stall: Stall, onAbort: () => void): ServerInterceptor {
  return async (call, next) => {
    const request = call.request as { userId?: unknown };
    if (call.method === "GetUser" && request.userId === userId) {
      const signal = call.context.signal;
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener("abort", () => (onAbort(), resolve()), { once: true });
        // Never longer than the test allows, whatever happens to the signal.
        setTimeout(resolve, 10_000).unref();
      });
      if (stall === "honours its signal") signal.throwIfAborted();
    }
    return next();
  };
}

/** Servers, data directories and client transports of one test, closed in order. */
class Deployment {
  private readonly apps: Switchyard[] = [];
  private readonly dirs: string[] = [];
  private readonly transports: Transport[] = [];

  async start(options: Omit<SwitchyardOptions, "dataDir" | "host" | "port" | "logger">): Promise<Switchyard> {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-explain-"));
    this.dirs.push(dataDir);
    const app = await startSwitchyard({ host: HOST, port: 0, dataDir, drainTimeoutMs: 1_000, logger: silentLogger(), ...options });
    this.apps.push(app);
    return app;
  }

  /** Closes one server early (a UserService that dies); close() skips it later. */
  async stop(app: Switchyard): Promise<void> {
    const index = this.apps.indexOf(app);
    if (index >= 0) this.apps.splice(index, 1);
    await app.close();
  }

  client<S extends typeof UserServiceDefinition | typeof OrderServiceDefinition>(definition: S, port: number): Client<S> {
    const transport = createGrpcTransport({ target: `${HOST}:${port}`, services: [definition] });
    this.transports.push(transport);
    return createClient(definition, transport);
  }

  /** Clients, then servers, last started first (which flushes their spans), then the data. */
  async close(): Promise<void> {
    for (const transport of this.transports.splice(0)) transport.close();
    for (const app of this.apps.splice(0).reverse()) await app.close();
    await Promise.all(this.dirs.splice(0).map((dir) => fs.rm(dir, { recursive: true, force: true })));
  }
}

/** What a rejected call carried, or a failure if it resolved. */
async function failure(call: Promise<unknown>): Promise<{ error: ClientError; elapsedMs: number }> {
  const startedAt = performance.now();
  const error = await call.then(
    () => assert.fail("the call succeeded"),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ClientError, `expected a ClientError, got ${String(error)}`);
  return { error, elapsedMs: performance.now() - startedAt };
}

function one(spans: readonly ReceivedSpan[], name: string, kind: ReceivedSpan["kind"]): ReceivedSpan {
  const found = spans.filter((span) => span.name === name && span.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind} span ${name}, got ${JSON.stringify(spans.map((s) => `${s.kind} ${s.name}`))}`);
  return found[0] as ReceivedSpan;
}

const DEADLINE_CASES = [
  { topology: "split", stall: "honours its signal" },
  { topology: "one process", stall: "honours its signal" },
  { topology: "split", stall: "ignores its signal" },
] as const;

for (const { topology, stall } of DEADLINE_CASES) {
  describe(`a DEADLINE_EXCEEDED names the hop that spent the budget (${topology}, the slow handler ${stall})`, () => {
    const deployment = new Deployment();
    let receiver: OtlpReceiver;
    const caller = callerContext();
    const userId = `user-${randomUUID()}`;
    let outcome: { error: ClientError; elapsedMs: number };

    before(async () => {
      receiver = await startOtlpReceiver();
      // The handler's end is awaited before the servers close: on a busy machine the shutdown could otherwise end it first.
      let handlerAborted!: () => void;
      const aborted = new Promise<void>((resolve) => (handlerAborted = resolve));
      const common = { otlpEndpoint: receiver.endpoint, interceptors: [stallGetUser(userId, stall, () => handlerAborted())] };
      let orderApp: Switchyard;
      let userApp: Switchyard;
      if (topology === "split") {
        userApp = await deployment.start({ ...common, services: ["user"] });
        orderApp = await deployment.start({
          ...common,
          services: ["order"],
          userServiceTarget: `${HOST}:${userApp.port}`,
          maxDeadlineMs: BUDGET_MS,
        });
      } else {
        orderApp = userApp = await deployment.start({ ...common, services: ["user", "order"], maxDeadlineMs: BUDGET_MS });
      }
      await deployment.client(UserServiceDefinition, userApp.port).createUser({ userId, name: "Ada", email: "ada@example.com" });
      // The caller allows 10 s; OrderService allows itself BUDGET_MS, and UserService spends all of it.
      outcome = await failure(
        deployment
          .client(OrderServiceDefinition, orderApp.port)
          .createOrder({ orderId: `order-${randomUUID()}`, userId }, { timeoutMs: 10_000, metadata: { traceparent: caller.traceparent } }),
      );
      await Promise.race([aborted, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      await deployment.close(); // flushes the spans
    });
    after(async () => {
      await deployment.close();
      await receiver?.close();
    });

    it("tells the caller it was UserService, in the message and in ErrorInfo", () => {
      const { error, elapsedMs } = outcome;
      assert.equal(Code[error.code], "DEADLINE_EXCEEDED", error.message);
      assert.equal(error.message, "deadline exceeded while waiting for service.UserService");
      assert.equal(error.reason, "DEPENDENCY_DEADLINE_EXCEEDED");
      assert.deepEqual(error.metadata, { dependency: "service.UserService" });
      // OrderService's answer, at its own budget, not the caller's timer at 10 s.
      assert.ok(elapsedMs >= BUDGET_MS - 100 && elapsedMs < 5_000, `failed after ${elapsedMs} ms`);
    });

    it("shows it in the trace: the GetUser client span failed with DEADLINE_EXCEEDED and took the budget", () => {
      const spans = receiver.spans.filter((span) => span.traceId === caller.traceId);
      const orderServer = one(spans, "service.OrderService/CreateOrder", "SERVER");
      const userClient = one(spans, "service.UserService/GetUser", "CLIENT");
      const userServer = one(spans, "service.UserService/GetUser", "SERVER");
      assert.equal(orderServer.attributes["rpc.grpc.status_code"], Code.DEADLINE_EXCEEDED);
      assert.deepEqual(orderServer.status, {
        code: "ERROR",
        message: "DEADLINE_EXCEEDED: deadline exceeded while waiting for service.UserService",
      });
      assert.equal(userClient.parentSpanId, orderServer.spanId);
      assert.equal(userClient.attributes["rpc.grpc.status_code"], Code.DEADLINE_EXCEEDED);
      assert.equal(userClient.status.code, "ERROR");
      assert.match(userClient.status.message, /^DEADLINE_EXCEEDED: /);
      // The hop that spent the budget: nearly all of CreateOrder's time went to GetUser.
      const orderMs = orderServer.endMs - orderServer.startMs;
      const userMs = userClient.endMs - userClient.startMs;
      assert.ok(orderMs >= BUDGET_MS - 100, `CreateOrder's span lasted ${orderMs} ms`);
      assert.ok(userMs >= 0.8 * orderMs, `GetUser's client span lasted ${userMs} of CreateOrder's ${orderMs} ms`);
      assert.equal(userServer.parentSpanId, topology === "split" ? one(spans, "service.UserService/GetUser attempt", "CLIENT").spanId : userClient.spanId);
    });

    it("records on UserService's own span that its caller gave up, without blaming a dependency", () => {
      const spans = receiver.spans.filter((span) => span.traceId === caller.traceId);
      const userServer = one(spans, "service.UserService/GetUser", "SERVER");
      const code = userServer.attributes["rpc.grpc.status_code"] as Code;
      // Which comes first is a race: UserService's own deadline, or the caller's cancellation as its deadline passed.
      assert.ok([Code.DEADLINE_EXCEEDED, Code.CANCELLED].includes(code), `UserService's span ended with ${String(code)}`);
      // The RPC semantic conventions make a server span an error for DEADLINE_EXCEEDED, not for its caller's cancellation.
      assert.equal(userServer.status.code, code === Code.DEADLINE_EXCEEDED ? "ERROR" : "UNSET");
      assert.doesNotMatch(userServer.status.message, /waiting for/);
    });
  });
}

describe("an UNAVAILABLE names the hop that failed (split, UserService gone)", () => {
  const deployment = new Deployment();
  let receiver: OtlpReceiver;
  const caller = callerContext();
  let userPort: number;
  let outcome: { error: ClientError; elapsedMs: number };

  before(async () => {
    receiver = await startOtlpReceiver();
    const userApp = await deployment.start({ services: ["user"], otlpEndpoint: receiver.endpoint });
    userPort = userApp.port;
    const orderApp = await deployment.start({
      services: ["order"],
      userServiceTarget: `${HOST}:${userApp.port}`,
      otlpEndpoint: receiver.endpoint,
    });
    const userId = `user-${randomUUID()}`;
    await deployment.client(UserServiceDefinition, userApp.port).createUser({ userId, name: "Ada", email: "ada@example.com" });
    const orders = deployment.client(OrderServiceDefinition, orderApp.port);
    // Connected and working first, then UserService goes away.
    await orders.createOrder({ orderId: `order-${randomUUID()}`, userId });
    await deployment.stop(userApp);
    outcome = await failure(
      orders.createOrder({ orderId: `order-${randomUUID()}`, userId }, { timeoutMs: 10_000, metadata: { traceparent: caller.traceparent } }),
    );
    await deployment.close();
  });
  after(async () => {
    await deployment.close();
    await receiver?.close();
  });

  it("tells the caller UserService is unavailable, without UserService's connection details", () => {
    const { error } = outcome;
    assert.equal(Code[error.code], "UNAVAILABLE", error.message);
    assert.equal(error.message, "service.UserService is unavailable; try again later");
    assert.equal(error.reason, "DEPENDENCY_UNAVAILABLE");
    assert.deepEqual(error.metadata, { dependency: "service.UserService" });
    assert.doesNotMatch(error.message, new RegExp(`ECONNREFUSED|${userPort}`));
  });

  it("shows it in the trace: the GetUser client span failed with UNAVAILABLE and says why", () => {
    const spans = receiver.spans.filter((span) => span.traceId === caller.traceId);
    // The caller's channel retried CreateOrder (idempotent, UNAVAILABLE): one server span per attempt, all alike.
    const orderServers = spans.filter((span) => span.kind === "SERVER");
    assert.ok(orderServers.length >= 1, JSON.stringify(spans.map((s) => `${s.kind} ${s.name}`)));
    for (const orderServer of orderServers) assertUnavailableHop(spans, orderServer);
  });
});

/** One CreateOrder attempt that failed because UserService was gone, as its spans tell it. */
function assertUnavailableHop(spans: readonly ReceivedSpan[], orderServer: ReceivedSpan): void {
  {
    const userClient = one(
      spans.filter((span) => span.parentSpanId === orderServer.spanId),
      "service.UserService/GetUser",
      "CLIENT",
    );
    assert.equal(orderServer.name, "service.OrderService/CreateOrder");
    assert.equal(orderServer.attributes["rpc.grpc.status_code"], Code.UNAVAILABLE);
    assert.deepEqual(orderServer.status, { code: "ERROR", message: "UNAVAILABLE: service.UserService is unavailable; try again later" });
    assert.equal(userClient.parentSpanId, orderServer.spanId);
    assert.equal(userClient.attributes["rpc.grpc.status_code"], Code.UNAVAILABLE);
    assert.equal(userClient.status.code, "ERROR");
    // The trace, unlike the caller, may see the hop's own reason.
    assert.match(userClient.status.message, /^UNAVAILABLE: .+/);
    // Every attempt at GetUser failed too.
    for (const attempt of spans.filter((span) => span.parentSpanId === userClient.spanId)) {
      assert.equal(attempt.name, "service.UserService/GetUser attempt");
      assert.equal(attempt.status.code, "ERROR");
      assert.equal(attempt.attributes["rpc.grpc.status_code"], Code.UNAVAILABLE);
    }
  }
}
