// `switchyard serve` with tracing from the standard environment variable and
// a metrics port: the startup summary names both, and spans still buffered
// at SIGTERM reach the collector before the process exits.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { Cleanup, startServer } from "../support/cli-process.js";
import { type OtlpReceiver, startOtlpReceiver } from "../support/otlp-receiver.js";

describe("switchyard serve: tracing and metrics", () => {
  const cleanup = new Cleanup();
  let receiver: OtlpReceiver;

  before(async () => {
    receiver = await startOtlpReceiver();
    cleanup.after(() => receiver.close());
  });
  after(() => cleanup.run());

  it("exports to $OTEL_EXPORTER_OTLP_ENDPOINT, serves /metrics, and flushes spans on SIGTERM", async () => {
    // The child inherits this process's environment.
    process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint;
    const server = await startServer(cleanup, { extraArgs: ["--metrics-port", "0"] });
    delete process.env["OTEL_EXPORTER_OTLP_ENDPOINT"];

    const listening = server.logs().find((line) => String(line.msg).startsWith("switchyard listening on"));
    assert.equal(listening?.["tracing"], `otlp ${receiver.endpoint}/v1/traces, sampling 1`);
    const metricsUrl = listening?.["metrics"];
    assert.ok(typeof metricsUrl === "string" && /^http:\/\/127\.0\.0\.1:\d+\/metrics$/.test(metricsUrl), String(metricsUrl));

    const transport = createGrpcTransport({ target: server.address, services: [UserServiceDefinition, OrderServiceDefinition] });
    const traceId = randomBytes(16).toString("hex");
    try {
      const userId = `user-${randomUUID()}`;
      await createClient(UserServiceDefinition, transport).createUser({ userId, name: "Ada", email: "ada@example.com" });
      await createClient(OrderServiceDefinition, transport).createOrder(
        { orderId: `order-${randomUUID()}`, userId },
        { metadata: { traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` } },
      );
    } finally {
      transport.close();
    }

    const metrics = await (await fetch(metricsUrl)).text();
    assert.match(
      metrics,
      /^grpc_server_handled_total\{grpc_type="unary",grpc_service="service\.OrderService",grpc_method="CreateOrder",grpc_code="OK"\} 1$/m,
    );

    const exit = await server.stop("SIGTERM");
    assert.equal(exit.code, 0, exit.stderr);
    const names = receiver.spans.filter((span) => span.traceId === traceId).map((span) => `${span.kind} ${span.name}`);
    assert.deepEqual(names.sort(), [
      "CLIENT service.UserService/GetUser",
      "SERVER service.OrderService/CreateOrder",
      "SERVER service.UserService/GetUser",
    ]);
    const logged = server.logs().filter((line) => line.msg === "call finished" && line["trace_id"] === traceId);
    assert.deepEqual(logged.map((line) => line["method"]).sort(), ["service.OrderService/CreateOrder", "service.UserService/GetUser"]);
  });
});
