import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { UserServiceDefinition } from "../src/gen/service/v1/service.js";
import { createDispatcher } from "../src/toolkit/server/dispatcher.js";
import { defineService } from "../src/toolkit/server/service-registration.js";
import { loggingInterceptor } from "../src/toolkit/server/logging-interceptor.js";
import { silentLogger } from "../src/toolkit/log/logger.js";
import { startTelemetry } from "../src/toolkit/telemetry/telemetry.js";
import type { ServerInterceptor } from "../src/toolkit/server/server-interceptor.js";

async function run(label: string, interceptors: readonly ServerInterceptor[]): Promise<void> {
  const d = createDispatcher({ logger: silentLogger(), interceptors: [...interceptors, loggingInterceptor(silentLogger())] });
  d.add(defineService(UserServiceDefinition, { getUser: async () => ({ name: "a", email: "b", userId: "c" }), createUser: async () => ({ name: "", email: "", userId: "" }) }));
  const route = d.route("/service.UserService/GetUser")!;
  const ctx = { method: "/service.UserService/GetUser", deadline: undefined, signal: new AbortController().signal, metadata: {}, peer: "x" };
  const N = 100_000;
  for (let i = 0; i < 10_000; i++) await d.invoke(route, { userId: "u" }, ctx);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await d.invoke(route, { userId: "u" }, ctx);
  const us = ((performance.now() - t0) * 1000) / N;
  console.log(label, us.toFixed(2), "µs/call");
}
const off = await startTelemetry({});
const t1 = await startTelemetry({ spanExporter: new InMemorySpanExporter(), traceSampleRatio: 0.01, metricsPort: 0, metricsHost: "127.0.0.1" });
const t100 = await startTelemetry({ spanExporter: new InMemorySpanExporter(), traceSampleRatio: 1 });
for (let r = 0; r < 2; r++) {
  await run("off              ", off.serverInterceptors);
  await run("trace 1% + metrics", t1.serverInterceptors);
  await run("trace 100%        ", t100.serverInterceptors);
}
await Promise.all([t1.close(), t100.close()]);
