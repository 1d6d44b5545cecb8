// Load shedding: a concurrency limit per server that refuses the call beyond
// it at once with RESOURCE_EXHAUSTED, instead of queueing it.
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it, type TestContext } from "node:test";
import { startSwitchyard } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { createCallContext } from "../../src/toolkit/rpc/call-context.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { loadShedding } from "../../src/toolkit/server/load-shedding.js";
import type { ServerCall, ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";

const context = createCallContext({ method: "/service.UserService/GetUser", peer: "ipv4:127.0.0.1:1" });
const call: ServerCall = { service: "service.UserService", method: "GetUser", request: {}, context };

/** A gate a test opens when it wants the held calls to finish. */
function gate(): { wait: Promise<void>; open(): void } {
  let open = (): void => undefined;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe("load shedding", () => {
  it("admits up to the limit, refuses the next call at once with RESOURCE_EXHAUSTED, and admits again when one ends", async () => {
    const shedding = loadShedding(2);
    const held = gate();
    let handled = 0;
    const handler = async (): Promise<string> => {
      handled++;
      await held.wait;
      return "ok";
    };
    const first = shedding.interceptor(call, handler);
    const second = shedding.interceptor(call, handler);
    assert.equal(shedding.inFlight, 2);

    const started = performance.now();
    await assert.rejects(shedding.interceptor(call, handler), (error: unknown) => {
      assert.ok(error instanceof RpcError);
      assert.equal(error.code, Code.RESOURCE_EXHAUSTED);
      assert.equal(error.reason, "OVERLOADED");
      assert.match(error.message, /limit of 2 concurrent calls/);
      return true;
    });
    assert.ok(performance.now() - started < 50, "refused without waiting");
    assert.equal(handled, 2, "the refused call never reached the handler");
    assert.equal(shedding.shed, 1);

    held.open();
    assert.deepEqual(await Promise.all([first, second]), ["ok", "ok"]);
    assert.equal(shedding.inFlight, 0);
    assert.equal(await shedding.interceptor(call, handler), "ok");
  });

  it("a call that fails frees its place too", async () => {
    const shedding = loadShedding(1);
    await assert.rejects(
      shedding.interceptor(call, () => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(shedding.inFlight, 0);
    assert.equal(await shedding.interceptor(call, () => Promise.resolve("ok")), "ok");
  });

  it("refuses a limit that is not a whole number of at least 1", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => loadShedding(bad), /at least 1/);
  });

  it("a server with --max-concurrent-calls 2 answers a third concurrent call at once; OrderService passes it on as UNAVAILABLE", async (t) => {
    const held = gate();
    let arrived = 0;
    const holdGetUser: ServerInterceptor = async (serverCall, next) => {
      if (serverCall.method === "GetUser" && (serverCall.request as { userId?: string }).userId === "held") {
        arrived++;
        await held.wait;
      }
      return next();
    };
    const user = await serve(t, { services: ["user"], maxConcurrentCalls: 2, interceptors: [holdGetUser] });
    const order = await serve(t, { services: ["order"], userServiceTarget: `127.0.0.1:${user.port}` });
    const userTransport = createGrpcTransport({ target: `127.0.0.1:${user.port}`, services: [UserServiceDefinition] });
    const orderTransport = createGrpcTransport({ target: `127.0.0.1:${order.port}`, services: [OrderServiceDefinition], retry: false });
    t.after(() => {
      held.open();
      userTransport.close();
      orderTransport.close();
    });
    const users = createClient(UserServiceDefinition, userTransport);
    const orders = createClient(OrderServiceDefinition, orderTransport);
    await users.createUser({ userId: "held", name: "Held", email: "held@example.com" });
    await users.createUser({ userId: "free", name: "Free", email: "free@example.com" });

    const inFlight = [users.getUser({ userId: "held" }, { timeoutMs: 10_000 }), users.getUser({ userId: "held" }, { timeoutMs: 10_000 })];
    while (arrived < 2) await new Promise((resolve) => setTimeout(resolve, 10));

    const started = performance.now();
    const refused = await users.getUser({ userId: "free" }, { timeoutMs: 5_000 }).then(
      () => assert.fail("the third call was admitted"),
      (error: unknown) => error,
    );
    const refusedAfterMs = performance.now() - started;
    assert.ok(refused instanceof ClientError, String(refused));
    assert.equal(refused.code, Code.RESOURCE_EXHAUSTED, refused.message);
    assert.equal(refused.reason, "OVERLOADED");
    t.diagnostic(`refused in ${refusedAfterMs.toFixed(1)} ms`);
    assert.ok(refusedAfterMs < 1_000, `refused at once, not queued (${refusedAfterMs} ms)`);

    // OrderService's GetUser is refused the same way; its own caller sees UNAVAILABLE.
    const viaOrder = await orders.createOrder({ orderId: "shed-1", userId: "free" }, { timeoutMs: 5_000 }).then(
      () => assert.fail("CreateOrder went through an overloaded UserService"),
      (error: unknown) => error,
    );
    assert.ok(viaOrder instanceof ClientError, String(viaOrder));
    assert.equal(viaOrder.code, Code.UNAVAILABLE, viaOrder.message);
    assert.equal(viaOrder.reason, "DEPENDENCY_UNAVAILABLE");

    held.open();
    await Promise.all(inFlight);
    assert.equal((await users.getUser({ userId: "free" })).name, "Free");
    assert.equal((await orders.createOrder({ orderId: "shed-2", userId: "free" })).orderId, "shed-2");
  });
});

async function serve(
  t: TestContext,
  options: Pick<Parameters<typeof startSwitchyard>[0], "services" | "maxConcurrentCalls" | "interceptors" | "userServiceTarget">,
): Promise<{ port: number }> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-shedding-"));
  const app = await startSwitchyard({ host: "127.0.0.1", port: 0, dataDir, drainTimeoutMs: 500, logger: silentLogger(), ...options });
  t.after(async () => {
    await app.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  return { port: app.port };
}
