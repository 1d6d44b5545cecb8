import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { startSwitchyard, type Switchyard, type SwitchyardOptions } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { type Client, createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import type { Transport } from "../../src/toolkit/client/transport.js";
import { createLogger } from "../../src/toolkit/log/logger.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../support/otlp-receiver.js";

const HOST = "127.0.0.1";

/** A log line as pino writes it. */
interface LogLine {
  readonly msg?: string;
  readonly method?: string;
  readonly code?: string;
  readonly trace_id?: string;
  readonly span_id?: string;
}

/** A logger whose lines the test can read. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new PassThrough();
  let pending = "";
  stream.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8");
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      lines.push(JSON.parse(pending.slice(0, newline)) as LogLine);
      pending = pending.slice(newline + 1);
    }
  });
  return { logger: createLogger({ level: "info", destination: stream }), lines };
}

/** A caller's W3C trace context: `00-<trace id>-<span id>-<flags>`. */
function callerContext(sampled = true): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${sampled ? "01" : "00"}` };
}

/** Processes started by a test, their data directories and the clients to them. */
class Deployment {
  private readonly apps: Switchyard[] = [];
  private readonly dirs: string[] = [];
  private readonly transports: Transport[] = [];
  private closed = false;

  async start(options: Omit<SwitchyardOptions, "dataDir" | "host" | "port">): Promise<Switchyard> {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-telemetry-"));
    this.dirs.push(dataDir);
    const app = await startSwitchyard({ host: HOST, port: 0, dataDir, drainTimeoutMs: 1_000, ...options });
    this.apps.push(app);
    return app;
  }

  client<S extends typeof UserServiceDefinition | typeof OrderServiceDefinition>(definition: S, port: number): Client<S> {
    const transport = createGrpcTransport({ target: `${HOST}:${port}`, services: [definition] });
    this.transports.push(transport);
    return createClient(definition, transport);
  }

  /** Closes clients, then servers (which flushes their spans), then removes the data. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const transport of this.transports) transport.close();
    // The order server first: it is a client of the user server.
    for (const app of [...this.apps].reverse()) await app.close();
    await Promise.all(this.dirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
  }
}

function spansOf(receiver: OtlpReceiver, traceId: string): ReceivedSpan[] {
  return receiver.spans.filter((span) => span.traceId === traceId);
}

function only(spans: readonly ReceivedSpan[], name: string, kind: ReceivedSpan["kind"]): ReceivedSpan {
  const found = spans.filter((span) => span.name === name && span.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind} span ${name}, got ${JSON.stringify(spans, null, 2)}`);
  return found[0] as ReceivedSpan;
}

/**
 * Checks the three spans of one CreateOrder and returns them. Over a grpc-js
 * channel, the GetUser call's one attempt has a span of its own between the
 * client span and UserService's server span; in process there is none.
 */
function assertCreateOrderTrace(
  spans: readonly ReceivedSpan[],
  caller: { traceId: string; spanId: string },
  via: "channel" | "in-process",
): { orderServer: ReceivedSpan; userClient: ReceivedSpan; userAttempt: ReceivedSpan | undefined; userServer: ReceivedSpan } {
  const expected = via === "channel" ? 4 : 3;
  assert.equal(spans.length, expected, `expected ${expected} spans in the trace, got ${JSON.stringify(spans.map((s) => `${s.kind} ${s.name}`))}`);
  const orderServer = only(spans, "service.OrderService/CreateOrder", "SERVER");
  const userClient = only(spans, "service.UserService/GetUser", "CLIENT");
  const userAttempt = via === "channel" ? only(spans, "service.UserService/GetUser attempt", "CLIENT") : undefined;
  const userServer = only(spans, "service.UserService/GetUser", "SERVER");
  for (const span of [orderServer, userClient, userServer]) assert.equal(span.traceId, caller.traceId);
  assert.equal(orderServer.parentSpanId, caller.spanId, "OrderService's server span is a child of the caller's span");
  assert.equal(userClient.parentSpanId, orderServer.spanId, "the client span is a child of OrderService's server span");
  if (userAttempt === undefined) {
    assert.equal(userServer.parentSpanId, userClient.spanId, "UserService's server span is a child of the client span");
  } else {
    assert.equal(userAttempt.parentSpanId, userClient.spanId, "the attempt span is a child of the client span");
    assert.equal(userServer.parentSpanId, userAttempt.spanId, "UserService's server span is a child of the attempt span");
  }
  const ids = [orderServer, userClient, userServer, ...(userAttempt ? [userAttempt] : [])].map((span) => span.spanId);
  assert.equal(new Set([...ids, caller.spanId]).size, expected + 1);
  return { orderServer, userClient, userAttempt, userServer };
}

describe("tracing across the split topology, exported over OTLP/HTTP", () => {
  const deployment = new Deployment();
  let receiver: OtlpReceiver;
  let user: Client<typeof UserServiceDefinition>;
  let order: Client<typeof OrderServiceDefinition>;
  const orderLog = capturingLogger();
  const userLog = capturingLogger();
  const userId = `user-${randomUUID()}`;
  const found = callerContext();
  const missing = callerContext();

  before(async () => {
    receiver = await startOtlpReceiver();
    const userApp = await deployment.start({ services: ["user"], otlpEndpoint: receiver.endpoint, logger: userLog.logger });
    const orderApp = await deployment.start({
      services: ["order"],
      userServiceTarget: `${HOST}:${userApp.port}`,
      otlpEndpoint: receiver.endpoint,
      logger: orderLog.logger,
    });
    assert.equal(orderApp.tracing, `otlp ${receiver.endpoint}/v1/traces, sampling 1`);
    user = deployment.client(UserServiceDefinition, userApp.port);
    order = deployment.client(OrderServiceDefinition, orderApp.port);

    await user.createUser({ userId, name: "Grace Hopper", email: "grace@example.com" });
    await order.createOrder({ orderId: `order-${randomUUID()}`, userId }, { metadata: { traceparent: found.traceparent } });
    await assert.rejects(
      order.createOrder({ orderId: `order-${randomUUID()}`, userId: `nobody-${randomUUID()}` }, { metadata: { traceparent: missing.traceparent } }),
      (error: unknown) => error instanceof ClientError && error.code === Code.FAILED_PRECONDITION,
    );
    // Closing flushes the span processors: everything is exported by now.
    await deployment.close();
  });
  after(async () => {
    await deployment.close();
    await receiver?.close();
  });

  it("receives the spans as OTLP protobuf on /v1/traces", () => {
    assert.ok(receiver.requests.length > 0);
    for (const request of receiver.requests) assert.deepEqual(request, { path: "/v1/traces", contentType: "application/x-protobuf" });
    const services = new Set(receiver.spans.map((span) => span.resource["service.name"]));
    assert.deepEqual([...services], ["switchyard"]);
  });

  it("puts OrderService's server span, its client span and UserService's server span in the caller's trace", () => {
    const { orderServer, userClient, userAttempt, userServer } = assertCreateOrderTrace(spansOf(receiver, found.traceId), found, "channel");
    assert.equal(userAttempt?.attributes["rpc.grpc.attempt"], 1);
    assert.equal(userAttempt?.attributes["rpc.grpc.status_code"], 0);
    assert.equal(userAttempt?.attributes["network.peer.address"], HOST);
    assert.deepEqual(orderServer.attributes, {
      "rpc.system": "grpc",
      "rpc.service": "service.OrderService",
      "rpc.method": "CreateOrder",
      "rpc.grpc.status_code": 0,
    });
    for (const span of [userClient, userServer]) {
      assert.deepEqual(span.attributes, {
        "rpc.system": "grpc",
        "rpc.service": "service.UserService",
        "rpc.method": "GetUser",
        "rpc.grpc.status_code": 0,
      });
      assert.equal(span.status.code, "UNSET");
    }
  });

  it("records failures: the status code on every span, an error status where the call failed", () => {
    const { orderServer, userClient, userServer } = assertCreateOrderTrace(spansOf(receiver, missing.traceId), missing, "channel");
    assert.equal(userServer.attributes["rpc.grpc.status_code"], Code.NOT_FOUND);
    // NOT_FOUND is the server answering as it should: not a server error.
    assert.equal(userServer.status.code, "UNSET");
    assert.equal(userClient.attributes["rpc.grpc.status_code"], Code.NOT_FOUND);
    assert.equal(userClient.status.code, "ERROR");
    assert.match(userClient.status.message, /^NOT_FOUND: /);
    assert.equal(orderServer.attributes["rpc.grpc.status_code"], Code.FAILED_PRECONDITION);
    assert.equal(orderServer.status.code, "UNSET");
  });

  it("starts a new trace for a call that arrives without a traceparent", () => {
    const createUser = receiver.spans.filter((span) => span.name === "service.UserService/CreateUser");
    assert.equal(createUser.length, 1);
    const [span] = createUser as [ReceivedSpan];
    assert.equal(span.kind, "SERVER");
    assert.equal(span.parentSpanId, "");
    assert.match(span.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(span.traceId, found.traceId);
  });

  it("writes the trace and span ids on each call's log line", () => {
    const { orderServer, userServer } = assertCreateOrderTrace(spansOf(receiver, found.traceId), found, "channel");
    const orderLine = orderLog.lines.find((line) => line.msg === "call finished" && line.trace_id === found.traceId);
    assert.deepEqual(
      { method: orderLine?.method, code: orderLine?.code, span_id: orderLine?.span_id },
      { method: "service.OrderService/CreateOrder", code: "OK", span_id: orderServer.spanId },
    );
    const userLine = userLog.lines.find((line) => line.msg === "call finished" && line.trace_id === found.traceId);
    assert.deepEqual(
      { method: userLine?.method, span_id: userLine?.span_id },
      { method: "service.UserService/GetUser", span_id: userServer.spanId },
    );
  });
});

describe("tracing with both services in one process and sampling", () => {
  const deployment = new Deployment();
  let receiver: OtlpReceiver;
  let user: Client<typeof UserServiceDefinition>;
  let order: Client<typeof OrderServiceDefinition>;
  const userId = `user-${randomUUID()}`;
  const sampled = callerContext(true);
  const unsampled = callerContext(false);

  before(async () => {
    receiver = await startOtlpReceiver();
    // Ratio 0: no new trace is recorded, but a caller's sampled trace is followed.
    const app = await deployment.start({
      services: ["user", "order"],
      otlpEndpoint: receiver.endpoint,
      traceSampleRatio: 0,
      logger: capturingLogger().logger,
    });
    user = deployment.client(UserServiceDefinition, app.port);
    order = deployment.client(OrderServiceDefinition, app.port);
    await user.createUser({ userId, name: "Ada", email: "ada@example.com" });
    await order.createOrder({ orderId: `order-${randomUUID()}`, userId }, { metadata: { traceparent: sampled.traceparent } });
    await order.createOrder({ orderId: `order-${randomUUID()}`, userId }, { metadata: { traceparent: unsampled.traceparent } });
    await deployment.close();
  });
  after(async () => {
    await deployment.close();
    await receiver?.close();
  });

  it("joins the caller's sampled trace through the in-process transport too", () => {
    assertCreateOrderTrace(spansOf(receiver, sampled.traceId), sampled, "in-process");
  });

  it("records nothing for new traces at ratio 0, nor for a caller's unsampled trace", () => {
    assert.deepEqual(spansOf(receiver, unsampled.traceId), []);
    assert.deepEqual(
      receiver.spans.filter((span) => span.traceId !== sampled.traceId).map((span) => span.name),
      [],
    );
  });
});

describe("without an OTLP endpoint", () => {
  it("installs no tracing", async () => {
    const deployment = new Deployment();
    try {
      const app = await deployment.start({ services: ["user", "order"], logger: capturingLogger().logger });
      assert.equal(app.tracing, undefined);
      assert.equal(app.metricsPort, undefined);
    } finally {
      await deployment.close();
    }
  });
});
