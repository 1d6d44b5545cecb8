import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { parseOtlpEndpoint, parseSampleRatio, serveTelemetryOf } from "../../src/cli/telemetry-options.js";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { type ClientCall, type ClientInterceptor, createClient } from "../../src/toolkit/client/create-client.js";
import { withMetadata } from "../../src/toolkit/client/create-client.js";
import { createInProcessTransport } from "../../src/toolkit/client/in-process-transport.js";
import type { Transport, TransportCallOptions } from "../../src/toolkit/client/transport.js";
import { type CallContext, createCallContext } from "../../src/toolkit/rpc/call-context.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { Metadata } from "../../src/toolkit/rpc/metadata.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { createDispatcher } from "../../src/toolkit/server/dispatcher.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import type { ServerCall } from "../../src/toolkit/server/server-interceptor.js";
import { defineService } from "../../src/toolkit/server/service-registration.js";
import { createRpcMetrics, GO_CODE_NAMES } from "../../src/toolkit/telemetry/rpc-metrics.js";
import { startTelemetry } from "../../src/toolkit/telemetry/telemetry.js";
import { createTracing, traceContextOf, tracesUrl } from "../../src/toolkit/telemetry/tracing.js";

/** A transport that records each call's options and answers an empty response. */
function recordingTransport(fail?: (attempt: number) => ClientError | undefined): Transport & { calls: TransportCallOptions[] } {
  const calls: TransportCallOptions[] = [];
  return {
    calls,
    unary: async (_service, method, _request, options) => {
      calls.push(options);
      const error = fail?.(calls.length);
      if (error) throw error;
      return method.responseType.decode(new Uint8Array());
    },
    close() {},
  };
}

function serverCall(metadata: Metadata = {}): ServerCall {
  const context = createCallContext({ method: "/service.UserService/GetUser", metadata, peer: "test" });
  return { service: "service.UserService", method: "GetUser", request: { userId: "u1" }, context };
}

describe("client interceptors", () => {
  it("run first listed outermost around the transport, and may change the call", async () => {
    const order: string[] = [];
    const tag =
      (name: string): ClientInterceptor =>
      async (call, next) => {
        order.push(`${name} in`);
        const response = await next(withMetadata(call, { ...call.options.metadata, [name]: "1" }));
        order.push(`${name} out`);
        return response;
      };
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport, { interceptors: [tag("outer"), tag("inner")] });
    await client.getUser({ userId: "u1" }, { metadata: { caller: "x" } });
    assert.deepEqual(order, ["outer in", "inner in", "inner out", "outer out"]);
    assert.deepEqual(transport.calls[0]?.metadata, { caller: "x", outer: "1", inner: "1" });
  });

  it("see the method, the request and the resolved deadline, and may call next more than once", async () => {
    const seen: ClientCall[] = [];
    const retryOnce: ClientInterceptor = async (call, next) => {
      seen.push(call);
      try {
        return await next(call);
      } catch {
        return next(call);
      }
    };
    const transport = recordingTransport((attempt) => (attempt === 1 ? new ClientError("/x", Code.UNAVAILABLE, "down") : undefined));
    const client = createClient(UserServiceDefinition, transport, { interceptors: [retryOnce], defaultTimeoutMs: 1_000 });
    await client.getUser({ userId: "u1" });
    assert.equal(transport.calls.length, 2);
    const [call] = seen as [ClientCall];
    assert.equal(call.path, "/service.UserService/GetUser");
    assert.equal(call.service, UserServiceDefinition);
    assert.equal(call.method.name, "GetUser");
    assert.deepEqual(call.request, { userId: "u1" });
    assert.ok(call.options.deadline > Date.now() && call.options.deadline <= Date.now() + 1_000);
  });

  it("see calls that fail for lack of time, which never reach the transport", async () => {
    const codes: Code[] = [];
    const observe: ClientInterceptor = (call, next) =>
      next(call).catch((error: unknown) => {
        if (error instanceof RpcError) codes.push(error.code);
        throw error;
      });
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport, { interceptors: [observe] });
    await assert.rejects(client.getUser({ userId: "u1" }, { timeoutMs: 0 }), (error: unknown) => {
      return error instanceof ClientError && error.code === Code.DEADLINE_EXCEEDED;
    });
    assert.deepEqual(codes, [Code.DEADLINE_EXCEEDED]);
    assert.equal(transport.calls.length, 0);
  });
});

describe("tracing interceptors", () => {
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ exporter });
  const finished = async (): Promise<ReadableSpan[]> => {
    await tracing.forceFlush();
    const spans = exporter.getFinishedSpans();
    exporter.reset();
    return spans;
  };

  it("give the handler the server span in its context, and send it on as the parent of its outbound calls", async () => {
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport, { interceptors: [tracing.clientInterceptor] });
    const callerTrace = "0af7651916cd43dd8448eb211c80319c";
    const callerSpan = "b7ad6b7169203331";
    let inHandler: string | undefined;
    await tracing.serverInterceptor(
      serverCall({ traceparent: `00-${callerTrace}-${callerSpan}-01`, tracestate: "vendor=opaque" }),
      async (changed) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        inHandler = trace.getSpanContext(traceContextOf(changed?.context))?.spanId;
        return client.getUser({ userId: "u1" }, { parent: changed?.context });
      },
    );
    const spans = await finished();
    const server = spans.find((span) => span.kind === SpanKind.SERVER);
    const clientSpan = spans.find((span) => span.kind === SpanKind.CLIENT);
    assert.ok(server && clientSpan);
    assert.equal(server.spanContext().traceId, callerTrace);
    assert.equal(server.parentSpanContext?.spanId, callerSpan);
    assert.equal(server.spanContext().traceState?.get("vendor"), "opaque");
    assert.equal(inHandler, server.spanContext().spanId);
    assert.equal(clientSpan.parentSpanContext?.spanId, server.spanContext().spanId);
    const sent = transport.calls[0]?.metadata?.["traceparent"];
    assert.equal(sent, `00-${callerTrace}-${clientSpan.spanContext().spanId}-01`);
    assert.equal(transport.calls[0]?.metadata?.["tracestate"], "vendor=opaque");
  });

  it("mark server spans as errors only for codes that mean the server failed", async () => {
    const outcomes: [Error, Code, SpanStatusCode][] = [
      [new RpcError(Code.NOT_FOUND, "no such user"), Code.NOT_FOUND, SpanStatusCode.UNSET],
      [new RpcError(Code.INVALID_ARGUMENT, "bad"), Code.INVALID_ARGUMENT, SpanStatusCode.UNSET],
      [new Error("a bug"), Code.INTERNAL, SpanStatusCode.ERROR],
      [new ClientError("/service.UserService/GetUser", Code.UNAVAILABLE, "down"), Code.UNAVAILABLE, SpanStatusCode.ERROR],
    ];
    for (const [thrown] of outcomes) {
      await assert.rejects(tracing.serverInterceptor(serverCall(), () => Promise.reject(thrown)));
    }
    const spans = await finished();
    assert.deepEqual(
      spans.map((span) => [span.attributes["rpc.grpc.status_code"], span.status.code]),
      outcomes.map(([, code, status]) => [code, status]),
    );
    // The internal error's message stays out of the span: the caller's message is recorded.
    assert.equal(spans[2]?.status.message, "INTERNAL: internal error");
  });

  it("ignore a malformed traceparent and start a new trace", async () => {
    await tracing.serverInterceptor(serverCall({ traceparent: "00-zz-not-a-trace" }), async () => "ok");
    const [span] = await finished();
    assert.ok(span);
    assert.equal(span.parentSpanContext, undefined);
  });

  it("hand back the call's own promise when recording it, so a recorded call takes no extra microtask turn", async () => {
    // Sampling 1: every call here is recorded (server and client span).
    const answered = Promise.resolve("ok");
    assert.equal(await tracing.serverInterceptor(serverCall(), () => answered), "ok");
    assert.equal(tracing.serverInterceptor(serverCall(), () => answered), answered);
    const call: ClientCall = {
      service: UserServiceDefinition,
      method: UserServiceDefinition.methods.getUser as ClientCall["method"],
      path: "/service.UserService/GetUser",
      request: { userId: "u1" },
      parent: undefined,
      options: { deadline: Date.now() + 1_000, cancellation: undefined, metadata: undefined, observer: undefined },
    };
    const failed = Promise.reject(new ClientError("/service.UserService/GetUser", Code.UNAVAILABLE, "down"));
    assert.equal(tracing.clientInterceptor(call, () => failed), failed);
    await assert.rejects(failed);
    const spans = await finished();
    assert.deepEqual(spans.map((span) => span.kind).sort(), [SpanKind.SERVER, SpanKind.SERVER, SpanKind.CLIENT].sort());
    assert.equal(spans.find((span) => span.kind === SpanKind.CLIENT)?.status.code, SpanStatusCode.ERROR);
  });

  it("reach the handler through the dispatcher", async () => {
    const dispatcher = createDispatcher({ logger: silentLogger(), interceptors: [tracing.serverInterceptor] });
    dispatcher.add(
      defineService(UserServiceDefinition, {
        getUser: async (_request, context) => ({ name: trace.getSpanContext(traceContextOf(context))?.spanId ?? "", email: "", userId: "u1" }),
        createUser: async () => ({ name: "", email: "", userId: "" }),
      }),
    );
    const route = dispatcher.route("/service.UserService/GetUser");
    assert.ok(route);
    const response = (await dispatcher.invoke(route, { userId: "u1" }, serverCall().context)) as { name: string };
    const [span] = await finished();
    assert.equal(response.name, span?.spanContext().spanId);
  });
});

describe("RPC metrics", () => {
  it("count calls by method and code and render them in the text format", async () => {
    const metrics = createRpcMetrics();
    const getUser = metrics.serverObserver.observe({ service: UserServiceDefinition, method: UserServiceDefinition.methods.getUser });
    getUser.finished(getUser.started(), Code.OK);
    getUser.finished(getUser.started(), Code.NOT_FOUND);
    const odd = metrics.serverObserver.observe({
      service: { ...UserServiceDefinition, fullName: 'odd"service\\' },
      method: UserServiceDefinition.methods.getUser,
    });
    odd.started();
    const text = metrics.render();
    const labels = 'grpc_type="unary",grpc_service="service.UserService",grpc_method="GetUser"';
    for (const line of [
      "# TYPE grpc_server_started_total counter",
      `grpc_server_started_total{${labels}} 2`,
      `grpc_server_handled_total{${labels},grpc_code="OK"} 1`,
      `grpc_server_handled_total{${labels},grpc_code="NotFound"} 1`,
      `grpc_server_msg_received_total{${labels}} 2`,
      `grpc_server_msg_sent_total{${labels}} 1`,
      "# TYPE grpc_server_handling_seconds histogram",
      `grpc_server_handling_seconds_bucket{${labels},le="+Inf"} 2`,
      `grpc_server_handling_seconds_count{${labels}} 2`,
      `grpc_server_in_flight_calls{${labels}} 0`,
      'grpc_server_in_flight_calls{grpc_type="unary",grpc_service="odd\\"service\\\\",grpc_method="GetUser"} 1',
      "# TYPE grpc_client_handled_total counter",
    ]) {
      assert.ok(text.split("\n").includes(line), `missing: ${line}\n${text}`);
    }
    assert.ok(text.endsWith("\n"));
  });

  it("count client calls by code, including those refused for lack of time, on the transport's own settling", async () => {
    const metrics = createRpcMetrics();
    const dispatcher = createDispatcher({ logger: silentLogger() });
    dispatcher.add(
      defineService(UserServiceDefinition, {
        getUser: async (request) => {
          if (request.userId !== "u1") throw new RpcError(Code.NOT_FOUND, "no such user");
          return { name: "n", email: "e", userId: "u1" };
        },
        createUser: async () => ({ name: "", email: "", userId: "" }),
      }),
    );
    const client = createClient(UserServiceDefinition, createInProcessTransport(dispatcher), { observer: metrics.clientObserver });
    await client.getUser({ userId: "u1" });
    await assert.rejects(client.getUser({ userId: "u2" }));
    await assert.rejects(client.getUser({ userId: "u1" }, { timeoutMs: 0 }));
    const text = metrics.render();
    const labels = 'grpc_type="unary",grpc_service="service.UserService",grpc_method="GetUser"';
    for (const line of [
      `grpc_client_started_total{${labels}} 3`,
      `grpc_client_handled_total{${labels},grpc_code="OK"} 1`,
      `grpc_client_handled_total{${labels},grpc_code="NotFound"} 1`,
      `grpc_client_handled_total{${labels},grpc_code="DeadlineExceeded"} 1`,
      `grpc_client_msg_sent_total{${labels}} 3`,
      `grpc_client_msg_received_total{${labels}} 1`,
      `grpc_client_in_flight_calls{${labels}} 0`,
    ]) {
      assert.ok(text.split("\n").includes(line), `missing: ${line}\n${text}`);
    }
  });
});

describe("telemetry setup", () => {
  it("installs nothing when neither tracing nor metrics is asked for", async () => {
    const telemetry = await startTelemetry({});
    assert.deepEqual(
      [
        telemetry.serverInterceptors.length,
        telemetry.serverObserver,
        telemetry.clientInterceptors.length,
        telemetry.clientObserver,
        telemetry.metricsPort,
        telemetry.tracing,
      ],
      [0, undefined, 0, undefined, undefined, undefined],
    );
    await telemetry.close();
  });

  it("posts spans to <endpoint>/v1/traces, as OTEL_EXPORTER_OTLP_ENDPOINT means", () => {
    assert.equal(tracesUrl("http://collector:4318"), "http://collector:4318/v1/traces");
    assert.equal(tracesUrl("http://collector:4318/"), "http://collector:4318/v1/traces");
    assert.equal(tracesUrl("https://otel.example/prefix"), "https://otel.example/prefix/v1/traces");
    assert.equal(tracesUrl("http://collector:4318/v1/traces"), "http://collector:4318/v1/traces");
  });

  it("refuses a sample ratio outside 0..1", () => {
    assert.throws(() => createTracing({ exporter: new InMemorySpanExporter(), sampleRatio: 2 }), RangeError);
  });

  it("names codes as grpc-go does, for dashboards made for go-grpc-prometheus", () => {
    assert.equal(GO_CODE_NAMES[Code.OK], "OK");
    assert.equal(GO_CODE_NAMES[Code.CANCELLED], "Canceled");
    assert.equal(GO_CODE_NAMES[Code.NOT_FOUND], "NotFound");
    assert.equal(GO_CODE_NAMES[Code.DEADLINE_EXCEEDED], "DeadlineExceeded");
    assert.equal(Object.keys(GO_CODE_NAMES).length, 17);
  });
});

describe("serve's telemetry flags", () => {
  const command = (): Command => new Command().exitOverride().configureOutput({ writeErr: () => undefined });

  it("parse an OTLP/HTTP endpoint and a sample ratio", () => {
    assert.equal(parseOtlpEndpoint("http://localhost:4318"), "http://localhost:4318");
    assert.throws(() => parseOtlpEndpoint("localhost:4317"));
    assert.throws(() => parseOtlpEndpoint("grpc://localhost:4317"));
    assert.equal(parseSampleRatio("0.01"), 0.01);
    assert.equal(parseSampleRatio("0"), 0);
    for (const bad of ["", "-0.1", "1.5", "half", "NaN"]) assert.throws(() => parseSampleRatio(bad), InvalidArgumentError, bad);
  });

  it("take the endpoint from OTEL_EXPORTER_OTLP_ENDPOINT when the flag is absent", () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
    assert.deepEqual(serveTelemetryOf({ traceSampleRatio: 1 }, command(), env), {
      otlpEndpoint: "http://collector:4318",
      traceSampleRatio: 1,
    });
    assert.deepEqual(serveTelemetryOf({ otlpEndpoint: "http://flag:4318", traceSampleRatio: 0.5, metricsPort: 9464 }, command(), env), {
      otlpEndpoint: "http://flag:4318",
      traceSampleRatio: 0.5,
      metricsPort: 9464,
    });
    assert.deepEqual(serveTelemetryOf({ traceSampleRatio: 1 }, command(), {}), { traceSampleRatio: 1 });
    assert.throws(() => serveTelemetryOf({ traceSampleRatio: 1 }, command(), { OTEL_EXPORTER_OTLP_ENDPOINT: "nope" }), CommanderError);
  });
});
