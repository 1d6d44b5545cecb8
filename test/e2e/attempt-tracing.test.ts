// A span per call attempt, on both client transports: retries happen inside
// grpc-js's channel, where the endpoint_ejection policy's picker shows each
// attempt to Tracing's attemptObserver, or inside the http2 client, which
// tells it itself. Spans go to a real OTLP/HTTP receiver on loopback.
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport, serviceConfig } from "../../src/toolkit/client/grpc-js-transport.js";
import { createHttp2Transport } from "../../src/toolkit/client/http2/http2-transport.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { createTracing, type Tracing } from "../../src/toolkit/telemetry/tracing.js";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../support/otlp-receiver.js";
import { startUserReplica, type UserReplica } from "../support/user-replica.js";

const GET_USER = "service.UserService/GetUser";

const TRANSPORTS = { "grpc-js": createGrpcTransport, http2: createHttp2Transport } as const;
type TransportKind = keyof typeof TRANSPORTS;

/** A traced client to `replica` (client span by the interceptor, attempt spans by the observer), closed at the end. */
function tracedClient(t: TestContext, replica: UserReplica, tracing: Tracing, kind: TransportKind) {
  const transport = TRANSPORTS[kind]({
    target: `static:///${replica.address}`,
    services: [UserServiceDefinition],
    attemptObserver: tracing.attemptObserver,
  });
  t.after(() => transport.close());
  return createClient(UserServiceDefinition, transport, { interceptors: [tracing.clientInterceptor] });
}

async function createUserOn(replica: UserReplica): Promise<void> {
  const transport = createGrpcTransport({ target: replica.address, services: [UserServiceDefinition] });
  await createClient(UserServiceDefinition, transport).createUser({ userId: "u-1", name: "Ada", email: "ada@example.com" });
  transport.close();
}

/** A GetUser whose first attempt the replica fails with UNAVAILABLE; returns how many traceparents the replica had seen before. */
async function callFailingFirstAttempt(users: ReturnType<typeof tracedClient>, replica: UserReplica): Promise<number> {
  replica.fault = "unavailable-on-first-attempt";
  const seenBefore = replica.traceparents.length;
  assert.equal((await users.getUser({ userId: "u-1" })).name, "Ada");
  return seenBefore;
}

/** The span id in a `traceparent`. */
const spanIdOf = (traceparent: string | undefined): string | undefined => traceparent?.split("-")[2];

describe("a span per call attempt", () => {
  let receiver: OtlpReceiver;
  before(async () => {
    receiver = await startOtlpReceiver();
  });
  after(() => receiver?.close());

  for (const kind of Object.keys(TRANSPORTS) as TransportKind[]) {
    it(`a call retried once after UNAVAILABLE: two attempt spans under its client span, each the parent of its server span (${kind} client)`, async (t) => {
      const replica = await startUserReplica(t, { otlpEndpoint: receiver.endpoint });
      await createUserOn(replica);
      const tracing = createTracing({ otlpEndpoint: receiver.endpoint, serviceName: `attempt-test-client-${kind}` });
      t.after(() => tracing.shutdown());
      const seenBefore = await callFailingFirstAttempt(tracedClient(t, replica, tracing, kind), replica);
      // Both sides export what they hold: the client's spans, then the server's as it closes.
      await tracing.forceFlush();
      await replica.close();

      const client = (spans: readonly ReceivedSpan[]) =>
        spans.find((span) => span.name === GET_USER && span.kind === "CLIENT" && span.resource["service.name"] === `attempt-test-client-${kind}`);
      const spans = await receiver.waitFor((received) => {
        const call = client(received);
        // The client span, two attempt spans, two server spans (the server's export comes in its own time).
        return call !== undefined && received.filter((span) => span.traceId === call.traceId).length === 5;
      });
      const call = client(spans);
      assert.ok(call);
      const trace = spans.filter((span) => span.traceId === call.traceId);
      assert.equal(call.parentSpanId, "", "the client span is the root here");
      assert.equal(call.attributes["rpc.grpc.status_code"], Code.OK);

      const attempts = trace.filter((span) => span.name === `${GET_USER} attempt`).sort((x, y) => Number(x.attributes["rpc.grpc.attempt"]) - Number(y.attributes["rpc.grpc.attempt"]));
      assert.equal(attempts.length, 2, JSON.stringify(trace.map((span) => `${span.kind} ${span.name}`)));
      const [first, second] = attempts as [ReceivedSpan, ReceivedSpan];
      const [host, port] = replica.address.split(":");
      for (const [attempt, number, code] of [
        [first, 1, Code.UNAVAILABLE],
        [second, 2, Code.OK],
      ] as const) {
        assert.equal(attempt.kind, "CLIENT");
        assert.equal(attempt.parentSpanId, call.spanId, "an attempt span is a child of the call's client span");
        assert.deepEqual(attempt.attributes, {
          "rpc.system": "grpc",
          "rpc.service": "service.UserService",
          "rpc.method": "GetUser",
          "rpc.grpc.attempt": number,
          "network.peer.address": host,
          "network.peer.port": Number(port),
          "rpc.grpc.status_code": code,
        });
      }
      assert.equal(first.status.code, "ERROR");
      assert.match(first.status.message, /^UNAVAILABLE: this replica is failing/);
      assert.equal(second.status.code, "UNSET");

      // Each attempt carried its own span as traceparent: the server spans hang under the attempts.
      assert.deepEqual(replica.traceparents.slice(seenBefore).map(spanIdOf), [first.spanId, second.spanId]);
      const serverSpans = trace.filter((span) => span.kind === "SERVER");
      assert.deepEqual(
        serverSpans.map((span) => [span.parentSpanId, span.attributes["rpc.grpc.status_code"]]).sort(),
        [
          [first.spanId, Code.UNAVAILABLE],
          [second.spanId, Code.OK],
        ].sort(),
      );
    });

    it(`a call not sampled gets no attempt spans, and its traceparent goes out unchanged on every attempt (${kind} client)`, async (t) => {
      const replica = await startUserReplica(t);
      await createUserOn(replica);
      const exported: string[] = [];
      const tracing = createTracing({
        sampleRatio: 0,
        exporter: {
          export: (spans, done) => {
            exported.push(...spans.map((span) => span.name));
            done({ code: 0 });
          },
          shutdown: async () => {},
        },
      });
      t.after(() => tracing.shutdown());
      const seenBefore = await callFailingFirstAttempt(tracedClient(t, replica, tracing, kind), replica);
      await tracing.forceFlush();
      const seen = replica.traceparents.slice(seenBefore);
      assert.equal(seen.length, 2, "the call was retried once");
      assert.equal(seen[0], seen[1], "both attempts carried the client span's traceparent");
      assert.match(seen[0] ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      assert.deepEqual(exported, []);
    });
  }

  it("without an attempt observer or outlier detection the channel balances with plain round_robin", () => {
    const plain = serviceConfig({ services: [UserServiceDefinition], outlierDetection: false, retry: false });
    assert.deepEqual(plain, { loadBalancingConfig: [{ round_robin: {} }] });
    const observed = serviceConfig({
      services: [UserServiceDefinition],
      outlierDetection: false,
      retry: false,
      attemptObserver: { attemptStarted: () => undefined },
    });
    assert.deepEqual(observed, { loadBalancingConfig: [{ endpoint_ejection: { childPolicy: [{ round_robin: {} }] } }] });
  });
});
