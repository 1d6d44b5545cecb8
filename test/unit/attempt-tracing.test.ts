// Tracing's attemptObserver without a channel: a fake transport plays the
// grpc-js picker, reporting attempts with the headers the call would send.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import type { AttemptHeaders, CallAttemptObserver } from "../../src/toolkit/client/call-attempt-observer.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import type { Transport } from "../../src/toolkit/client/transport.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { createTracing } from "../../src/toolkit/telemetry/tracing.js";

/** Headers over a plain record, as an attempt's metadata. */
function headersOver(record: Record<string, string>): AttemptHeaders {
  return { get: (key) => record[key], set: (key, value) => void (record[key] = value) };
}

/**
 * A transport whose every call makes the given attempts (their endpoints and
 * codes), each reported to `observer` with a copy of the call's headers, as
 * the channel would; resolves when the last one is OK.
 */
function attemptingTransport(observer: CallAttemptObserver, attempts: ReadonlyArray<{ endpoint: string | undefined; code: Code }>) {
  const sent: Array<Record<string, string>> = [];
  const transport: Transport = {
    async unary(_service, _method, _request, options) {
      for (const [index, { endpoint, code }] of attempts.entries()) {
        const headers: Record<string, string> = {};
        for (const [key, value] of Object.entries(options.metadata ?? {})) if (typeof value === "string") headers[key] = value;
        if (index > 0) headers["grpc-previous-rpc-attempts"] = String(index);
        const ended = observer.attemptStarted({ endpoint, number: index + 1, headers: headersOver(headers) });
        sent.push(headers);
        ended?.(code, code === Code.OK ? "" : `attempt ${index + 1} failed`);
        if (code === Code.OK) return { user: { userId: "u-1", name: "Ada", email: "ada@example.com" } } as never;
      }
      throw new ClientError("/service.UserService/GetUser", attempts.at(-1)?.code ?? Code.UNKNOWN, "every attempt failed");
    },
    close() {},
  };
  return { transport, sent };
}

describe("attempt spans", () => {
  it("one CLIENT span per attempt under the call's span, each sent on as that attempt's traceparent", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = createTracing({ exporter });
    const { transport, sent } = attemptingTransport(tracing.attemptObserver, [
      { endpoint: undefined, code: Code.UNAVAILABLE },
      { endpoint: "[::1]:50051", code: Code.UNAVAILABLE },
      { endpoint: "10.0.0.7:50052", code: Code.OK },
    ]);
    const users = createClient(UserServiceDefinition, transport, { interceptors: [tracing.clientInterceptor] });
    await users.getUser({ userId: "u-1" });
    await tracing.forceFlush();

    const spans = exporter.getFinishedSpans();
    const call = spans.find((span) => span.name === "service.UserService/GetUser");
    assert.ok(call);
    const attempts = spans.filter((span) => span.name === "service.UserService/GetUser attempt");
    assert.equal(attempts.length, 3);
    for (const [index, attempt] of attempts.entries()) {
      assert.equal(attempt.kind, SpanKind.CLIENT);
      assert.equal(attempt.spanContext().traceId, call.spanContext().traceId);
      assert.equal(attempt.parentSpanContext?.spanId, call.spanContext().spanId);
      assert.equal(attempt.attributes["rpc.grpc.attempt"], index + 1);
      assert.equal(sent[index]?.["traceparent"], `00-${attempt.spanContext().traceId}-${attempt.spanContext().spanId}-01`);
    }
    const [noEndpoint, ipv6, ipv4] = attempts as [(typeof attempts)[number], (typeof attempts)[number], (typeof attempts)[number]];
    assert.equal(noEndpoint.attributes["network.peer.address"], undefined, "no endpoint could be picked");
    assert.deepEqual([ipv6.attributes["network.peer.address"], ipv6.attributes["network.peer.port"]], ["::1", 50051]);
    assert.deepEqual([ipv4.attributes["network.peer.address"], ipv4.attributes["network.peer.port"]], ["10.0.0.7", 50052]);
    assert.deepEqual(
      attempts.map((span) => [span.attributes["rpc.grpc.status_code"], span.status.code]),
      [
        [Code.UNAVAILABLE, SpanStatusCode.ERROR],
        [Code.UNAVAILABLE, SpanStatusCode.ERROR],
        [Code.OK, SpanStatusCode.UNSET],
      ],
    );
    await tracing.shutdown();
  });

  it("leaves alone an attempt whose traceparent is not a call in flight of this tracing", async () => {
    const mine = createTracing({ exporter: new InMemorySpanExporter() });
    const headers = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" };
    assert.equal(mine.attemptObserver.attemptStarted({ endpoint: "127.0.0.1:1", number: 1, headers: headersOver(headers) }), undefined);
    assert.equal(headers.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert.equal(mine.attemptObserver.attemptStarted({ endpoint: "127.0.0.1:1", number: 1, headers: headersOver({}) }), undefined);

    // A call traced by another Tracing is not followed by this one's observer.
    const exporter = new InMemorySpanExporter();
    const third = createTracing({ exporter });
    const { transport, sent } = attemptingTransport(mine.attemptObserver, [{ endpoint: "127.0.0.1:1", code: Code.OK }]);
    await createClient(UserServiceDefinition, transport, { interceptors: [third.clientInterceptor] }).getUser({ userId: "u-1" });
    await third.forceFlush();
    assert.deepEqual(exporter.getFinishedSpans().map((span) => span.name), ["service.UserService/GetUser"]);
    assert.equal(sent[0]?.["traceparent"]?.split("-")[2], exporter.getFinishedSpans()[0]?.spanContext().spanId);
    await Promise.all([mine.shutdown(), third.shutdown()]);
  });

  it("forgets a call's span once the call is over, failed or not", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = createTracing({ exporter });
    const { transport, sent } = attemptingTransport(tracing.attemptObserver, [{ endpoint: "127.0.0.1:1", code: Code.INTERNAL }]);
    await assert.rejects(createClient(UserServiceDefinition, transport, { interceptors: [tracing.clientInterceptor] }).getUser({ userId: "u-1" }));
    await tracing.forceFlush();
    const call = exporter.getFinishedSpans().find((span) => span.name === "service.UserService/GetUser");
    assert.ok(call);
    // A late attempt of the finished call (its traceparent) gets no span.
    const late = { traceparent: `00-${call.spanContext().traceId}-${call.spanContext().spanId}-01` };
    assert.equal(tracing.attemptObserver.attemptStarted({ endpoint: "127.0.0.1:1", number: 2, headers: headersOver(late) }), undefined);
    assert.equal(sent.length, 1);
    await tracing.shutdown();
  });
});
