// The client channel's resilience settings, on loopback: outlier detection
// ejects a replica that answers with failures and probes it back; hedging
// sends a second copy of a slow read; the service config grpc-js is given.
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it, type TestContext } from "node:test";
import { startSwitchyard } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport, type GrpcTransportOptions, serviceConfig } from "../../src/toolkit/client/grpc-js-transport.js";
import { createHttp2Transport } from "../../src/toolkit/client/http2/http2-transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";

/** A UserService replica in this process whose GetUser the test can break or slow down. */
interface Replica {
  readonly address: string;
  /** GetUser calls that reached it. */
  calls: number;
  /** When set, GetUser fails with INTERNAL (a replica with a broken store, still accepting connections). */
  broken: boolean;
  /** `grpc-previous-rpc-attempts` of each GetUser it saw (0 when absent). */
  readonly previousAttempts: number[];
  /** When set, a first attempt (no `grpc-previous-rpc-attempts`) waits this long, or until cancelled. */
  slowFirstAttemptMs: number;
  /** How many attempts of a call slowFirstAttemptMs holds: 1, the first; 2, the first and the second. */
  slowAttempts: number;
  /** Held attempts that saw their caller give up while waiting. */
  cancelledHeldAttempts: number;
  /** When set, a first attempt fails at once with this status. */
  failFirstAttemptWith: Code | undefined;
}

async function replica(t: TestContext): Promise<Replica> {
  const state: Omit<Replica, "address"> = {
    calls: 0,
    broken: false,
    previousAttempts: [],
    slowFirstAttemptMs: 0,
    slowAttempts: 1,
    cancelledHeldAttempts: 0,
    failFirstAttemptWith: undefined,
  };
  const fault: ServerInterceptor = async (call, next) => {
    if (call.method !== "GetUser") return next();
    state.calls++;
    const previous = Number(call.context.metadata["grpc-previous-rpc-attempts"] ?? 0);
    state.previousAttempts.push(previous);
    if (state.broken) throw new RpcError(Code.INTERNAL, "the store is broken");
    if (state.failFirstAttemptWith !== undefined && previous === 0) throw new RpcError(state.failFirstAttemptWith, "the first attempt fails");
    if (state.slowFirstAttemptMs > 0 && previous < state.slowAttempts) {
      const signal = call.context.signal;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, state.slowFirstAttemptMs);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          state.cancelledHeldAttempts++;
          resolve();
        });
      });
      signal.throwIfAborted();
    }
    return next();
  };
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-balancing-"));
  const app = await startSwitchyard({
    services: ["user"],
    host: "127.0.0.1",
    port: 0,
    dataDir,
    drainTimeoutMs: 200,
    interceptors: [fault],
    logger: silentLogger(),
  });
  t.after(async () => {
    await app.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  const result = Object.assign(state, { address: `127.0.0.1:${app.port}` });
  const transport = createGrpcTransport({ target: result.address, services: [UserServiceDefinition] });
  await createClient(UserServiceDefinition, transport).createUser({ userId: "u-1", name: "Ada", email: "ada@example.com" });
  transport.close();
  return result;
}

/** The two channel implementations, for what both must do alike. */
const TRANSPORTS = { "grpc-js": createGrpcTransport, http2: createHttp2Transport } as const;
type Engine = keyof typeof TRANSPORTS;

function clientTo(
  t: TestContext,
  replicas: readonly Replica[],
  options: Pick<GrpcTransportOptions, "retry" | "outlierDetection" | "hedging">,
  engine: Engine = "grpc-js",
) {
  const transport = TRANSPORTS[engine]({
    target: `static:///${replicas.map((r) => r.address).join(",")}`,
    services: [UserServiceDefinition],
    ...options,
  });
  t.after(() => transport.close());
  return createClient(UserServiceDefinition, transport);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("client channel resilience", () => {
  it("service config: endpoint_ejection around round_robin, retries for idempotent methods, hedging only for reads", () => {
    const config = serviceConfig({ services: [UserServiceDefinition], hedging: { methods: ["GetUser"], delayMs: 50 } }) as {
      loadBalancingConfig: Array<Record<string, { childPolicy?: unknown; ejection?: { requestVolume: number } }>>;
      methodConfig: Array<{ name: Array<{ method: string }>; retryPolicy?: unknown; hedgingPolicy?: { hedgingDelay: string } }>;
      retryThrottling: unknown;
    };
    const outlier = config.loadBalancingConfig[0]?.["endpoint_ejection"];
    assert.ok(outlier, JSON.stringify(config.loadBalancingConfig));
    assert.deepEqual(outlier.childPolicy, [{ round_robin: {} }]);
    assert.equal(outlier.ejection?.requestVolume, 5);
    const retried = config.methodConfig.find((entry) => entry.retryPolicy !== undefined);
    const hedged = config.methodConfig.find((entry) => entry.hedgingPolicy !== undefined);
    assert.deepEqual(retried?.name.map((name) => name.method), ["CreateUser"]);
    assert.deepEqual(hedged?.name.map((name) => name.method), ["GetUser"]);
    assert.equal(hedged?.hedgingPolicy?.hedgingDelay, "0.05s");
    assert.ok(config.retryThrottling);

    assert.deepEqual(serviceConfig({ services: [UserServiceDefinition], outlierDetection: false, retry: false }), {
      loadBalancingConfig: [{ round_robin: {} }],
    });
    assert.throws(
      () => serviceConfig({ services: [UserServiceDefinition], hedging: { methods: ["CreateUser"] } }),
      /cannot hedge CreateUser: only methods the proto marks NO_SIDE_EFFECTS/,
    );
  });

  it("outlier detection ejects a replica that answers with failures, and probes it back once it is healthy", async (t) => {
    const [a, b] = await Promise.all([replica(t), replica(t)]);
    assert.ok(a && b);
    const users = clientTo(t, [a, b], {
      retry: false,
      outlierDetection: { intervalMs: 200, baseEjectionTimeMs: 2_000, requestVolume: 3 },
    });
    // Four callers in a row each, so that each interval sees calls however slow this machine is.
    const round = async (): Promise<{ failed: number; onA: number }> => {
      const before = a.calls;
      const outcomes = await Promise.all(
        Array.from({ length: 4 }, () => users.getUser({ userId: "u-1" }, { timeoutMs: 5_000 }).then(() => 0, () => 1)),
      );
      return { failed: outcomes.reduce<number>((sum, n) => sum + n, 0), onA: a.calls - before };
    };

    let healthyOnA = 0;
    for (let i = 0; i < 10; i++) healthyOnA += (await round()).onA;
    assert.ok(healthyOnA > 0 && b.calls > 0, "both replicas serve");

    // Broken: calls fail until A is ejected; then 20 rounds in a row (80 calls) succeed, none on A.
    a.broken = true;
    const brokenAt = performance.now();
    let failedBeforeEjection = 0;
    let streak = 0;
    let streakOnA = 0;
    while (streak < 20) {
      assert.ok(performance.now() - brokenAt < 15_000, "the broken replica was never ejected");
      const { failed, onA } = await round();
      failedBeforeEjection += failed;
      streak = failed === 0 ? streak + 1 : 0;
      streakOnA = failed === 0 ? streakOnA + onA : 0;
    }
    const ejectedAfterMs = performance.now() - brokenAt;
    t.diagnostic(`A broken: ${failedBeforeEjection} calls failed before it was ejected; then 80 calls in a row succeeded (${Math.round(ejectedAfterMs)} ms in)`);
    assert.ok(failedBeforeEjection > 0, "the broken replica was called before it was ejected");
    assert.equal(streakOnA, 0, "no call goes to the ejected replica");

    // Repaired: A is returned to rotation when its ejection ends, and serves again.
    a.broken = false;
    const repairedAt = performance.now();
    const aBefore = a.calls;
    while (a.calls === aBefore) {
      assert.ok(performance.now() - repairedAt < 15_000, "the repaired replica was never called again");
      assert.equal((await round()).failed, 0);
    }
    t.diagnostic(`A repaired: called again ${Math.round(performance.now() - repairedAt)} ms later`);
    let backOnA = 0;
    for (let i = 0; i < 10; i++) {
      const { failed, onA } = await round();
      assert.equal(failed, 0);
      backOnA += onA;
    }
    assert.ok(backOnA > 0, "A serves its share again");
  });

  it("without outlier detection, a replica that answers with failures keeps getting its share", async (t) => {
    const [a, b] = await Promise.all([replica(t), replica(t)]);
    assert.ok(a && b);
    const users = clientTo(t, [a, b], { retry: false, outlierDetection: false });
    await users.getUser({ userId: "u-1" });
    a.broken = true;
    let failed = 0;
    for (let i = 0; i < 100; i++) await users.getUser({ userId: "u-1" }).catch(() => failed++);
    assert.ok(failed >= 40 && failed <= 60, `${failed} of 100 failed`);
  });

  it("hedging (http2): a hedge goes to an endpoint the call has not tried, even with calls in flight", async (t) => {
    const [a, b] = await Promise.all([replica(t), replica(t)]);
    assert.ok(a && b);
    const users = clientTo(t, [a, b], { hedging: { methods: ["GetUser"], delayMs: 50, maxAttempts: 2 } }, "http2");
    await users.getUser({ userId: "u-1" });
    a.slowFirstAttemptMs = 3_000;
    const started = performance.now();
    // Twenty at once: first attempts alternate between A and B, and so would the hedges in plain rotation.
    await Promise.all(Array.from({ length: 20 }, () => users.getUser({ userId: "u-1" }, { timeoutMs: 5_000 })));
    const elapsed = performance.now() - started;
    const hedgesOnA = a.previousAttempts.filter((previous) => previous === 1).length;
    const hedgesOnB = b.previousAttempts.filter((previous) => previous === 1).length;
    t.diagnostic(`20 concurrent hedged GetUser in ${Math.round(elapsed)} ms; hedges on A ${hedgesOnA}, on B ${hedgesOnB}`);
    assert.ok(hedgesOnB > 0, "the calls stalled on A were hedged");
    assert.equal(hedgesOnA, 0, "no hedge went back to the endpoint its first attempt was stuck on");
    assert.ok(elapsed < 1_000, `every call answered by B (${Math.round(elapsed)} ms)`);
  });

  it("hedging (http2): with three copies, the third answer cancels both copies still held", async (t) => {
    const [a, b] = await Promise.all([replica(t), replica(t)]);
    assert.ok(a && b);
    const users = clientTo(t, [a, b], { hedging: { methods: ["GetUser"], delayMs: 50, maxAttempts: 3 }, outlierDetection: false }, "http2");
    await users.getUser({ userId: "u-1" });
    a.slowFirstAttemptMs = b.slowFirstAttemptMs = 3_000;
    a.slowAttempts = b.slowAttempts = 2;
    const started = performance.now();
    assert.equal((await users.getUser({ userId: "u-1" }, { timeoutMs: 5_000 })).name, "Ada");
    assert.ok(performance.now() - started < 1_000, `answered by the third copy in ${Math.round(performance.now() - started)} ms`);
    const deadline = performance.now() + 2_000;
    while (a.cancelledHeldAttempts + b.cancelledHeldAttempts < 2 && performance.now() < deadline) await sleep(20);
    assert.equal(a.cancelledHeldAttempts + b.cancelledHeldAttempts, 2, "both held copies were cancelled");
  });

  it("hedging (http2): a replica whose copies are outrun by their hedges is ejected, and calls stop paying the hedging delay", async (t) => {
    const [a, b] = await Promise.all([replica(t), replica(t)]);
    assert.ok(a && b);
    const users = clientTo(
      t,
      [a, b],
      {
        hedging: { methods: ["GetUser"], delayMs: 50, maxAttempts: 2 },
        outlierDetection: { intervalMs: 200, baseEjectionTimeMs: 10_000, requestVolume: 3 },
      },
      "http2",
    );
    await users.getUser({ userId: "u-1" });
    a.slowFirstAttemptMs = 3_000;
    const stalledAt = performance.now();
    // Rounds of four at once until twenty calls in a row reach B alone, answered without waiting for a hedge.
    let streak = 0;
    while (streak < 5) {
      assert.ok(performance.now() - stalledAt < 10_000, "the stalling replica was never ejected");
      const aBefore = a.calls;
      const started = performance.now();
      await Promise.all(Array.from({ length: 4 }, () => users.getUser({ userId: "u-1" }, { timeoutMs: 5_000 })));
      streak = a.calls === aBefore && performance.now() - started < 50 ? streak + 1 : 0;
    }
    t.diagnostic(`A ejected: twenty calls in a row on B alone ${Math.round(performance.now() - stalledAt)} ms after A began to stall`);
  });

  for (const engine of Object.keys(TRANSPORTS) as Engine[]) {
    it(`hedging (${engine}): a read that gets no answer within the hedging delay is sent again, the first answer wins, the slow copy is cancelled`, async (t) => {
      const [a, b] = await Promise.all([replica(t), replica(t)]);
      assert.ok(a && b);
      const users = clientTo(t, [a, b], { hedging: { methods: ["GetUser"], delayMs: 50, maxAttempts: 2 } }, engine);
      await users.getUser({ userId: "u-1" });
      a.slowFirstAttemptMs = b.slowFirstAttemptMs = 3_000;
      const durations: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        const user = await users.getUser({ userId: "u-1" }, { timeoutMs: 5_000 });
        durations.push(performance.now() - started);
        assert.equal(user.name, "Ada");
      }
      const slowest = Math.max(...durations);
      t.diagnostic(`hedged GetUser: ${durations.map((d) => Math.round(d)).join(", ")} ms (first attempts held 3 s)`);
      assert.ok(slowest < 1_000, `every call answered by its hedge (slowest ${Math.round(slowest)} ms)`);
      const hedges = [...a.previousAttempts, ...b.previousAttempts].filter((previous) => previous === 1).length;
      assert.ok(hedges >= 10, `each call sent a hedge marked grpc-previous-rpc-attempts: 1 (${hedges})`);
      // The losing first attempts were cancelled, not left running.
      const deadline = performance.now() + 2_000;
      while (a.cancelledHeldAttempts + b.cancelledHeldAttempts < 10 && performance.now() < deadline) await sleep(20);
      assert.equal(a.cancelledHeldAttempts + b.cancelledHeldAttempts, 10);
    });

    it(`hedging (${engine}): a hedged read whose first attempt fails UNAVAILABLE sends the next at once, without waiting out the delay`, async (t) => {
      const [a, b] = await Promise.all([replica(t), replica(t)]);
      assert.ok(a && b);
      const users = clientTo(t, [a, b], { hedging: { methods: ["GetUser"], delayMs: 10_000, maxAttempts: 3 } }, engine);
      await users.getUser({ userId: "u-1" });
      a.failFirstAttemptWith = b.failFirstAttemptWith = Code.UNAVAILABLE;
      const started = performance.now();
      const user = await users.getUser({ userId: "u-1" }, { timeoutMs: 5_000 });
      assert.equal(user.name, "Ada");
      assert.ok(performance.now() - started < 2_000, `answered by the second attempt in ${Math.round(performance.now() - started)} ms`);
      assert.ok([...a.previousAttempts, ...b.previousAttempts].includes(1), "the second attempt says grpc-previous-rpc-attempts: 1");
    });

    it(`hedging (${engine}): a hedged read whose attempt fails with a fatal status fails at once with it`, async (t) => {
      const [a, b] = await Promise.all([replica(t), replica(t)]);
      assert.ok(a && b);
      const users = clientTo(t, [a, b], { hedging: { methods: ["GetUser"], delayMs: 10_000, maxAttempts: 3 } }, engine);
      await users.getUser({ userId: "u-1" });
      a.failFirstAttemptWith = b.failFirstAttemptWith = Code.FAILED_PRECONDITION;
      const calls = a.calls + b.calls;
      await assert.rejects(users.getUser({ userId: "u-1" }, { timeoutMs: 5_000 }), (error: RpcError) => error.code === Code.FAILED_PRECONDITION);
      assert.equal(a.calls + b.calls, calls + 1, "no hedge went out");
    });

    it(`serve's userServiceHedgingDelayMs (${engine} client): OrderService answers through the hedge while its UserService replicas stall`, async (t) => {
      const [a, b] = await Promise.all([replica(t), replica(t)]);
      assert.ok(a && b);
      const order = await startSwitchyard({
        services: ["order"],
        userServiceTarget: `static:///${a.address},${b.address}`,
        userServiceHedgingDelayMs: 50,
        clientEngine: engine,
        host: "127.0.0.1",
        port: 0,
        dataDir: "unused",
        memory: true,
        drainTimeoutMs: 200,
        logger: silentLogger(),
      });
      t.after(() => order.close());
      const transport = createGrpcTransport({ target: `127.0.0.1:${order.port}`, services: [OrderServiceDefinition] });
      t.after(() => transport.close());
      const orders = createClient(OrderServiceDefinition, transport);
      await orders.createOrder({ orderId: "o-1", userId: "u-1" });
      a.slowFirstAttemptMs = b.slowFirstAttemptMs = 3_000;
      const started = performance.now();
      const latest = await orders.getOrderByUser({ userId: "u-1" }, { timeoutMs: 5_000 });
      const elapsed = performance.now() - started;
      assert.equal(latest.orderId, "o-1");
      assert.ok(elapsed < 1_000, `answered by the hedge in ${Math.round(elapsed)} ms (first attempts held 3 s)`);
      const deadline = performance.now() + 2_000;
      while (a.cancelledHeldAttempts + b.cancelledHeldAttempts < 1 && performance.now() < deadline) await sleep(20);
      assert.equal(a.cancelledHeldAttempts + b.cancelledHeldAttempts, 1, "the stalled first attempt was cancelled");
    });
  }
});
