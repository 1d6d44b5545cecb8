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
import { createDispatcher, type Dispatcher } from "../../src/toolkit/server/dispatcher.js";
import { type LoadShedding, loadShedding } from "../../src/toolkit/server/load-shedding.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";

const context = createCallContext({ method: "/service.UserService/GetUser", peer: "ipv4:127.0.0.1:1" });

/** A dispatcher serving GetUser with `handler`, its calls shed beyond `limit` by the dispatcher's own count. */
function shedServer(limit: number, handler: () => Promise<unknown>): { shedding: LoadShedding; call(): Promise<unknown> } {
  let dispatcher: Dispatcher | undefined;
  const shedding = loadShedding(limit, () => dispatcher?.inFlight ?? 0);
  const served = createDispatcher({ logger: silentLogger(), interceptors: [shedding.interceptor] });
  served.add({ definition: UserServiceDefinition, handlers: { getUser: handler, createUser: handler } });
  dispatcher = served;
  const route = served.route("/service.UserService/GetUser");
  assert.ok(route !== undefined);
  return { shedding, call: () => served.invoke(route, {}, context) };
}

/** A gate a test opens when it wants the held calls to finish. */
function gate(): { wait: Promise<void>; open(): void } {
  let open = (): void => undefined;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe("load shedding", () => {
  it("admits up to the limit, refuses the next call at once with RESOURCE_EXHAUSTED, and admits again when one ends", async () => {
    const held = gate();
    let handled = 0;
    const { shedding, call } = shedServer(2, async () => {
      handled++;
      await held.wait;
      return "ok";
    });
    const first = call();
    const second = call();
    assert.equal(shedding.inFlight, 2);

    const started = performance.now();
    await assert.rejects(call(), (error: unknown) => {
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
    assert.equal(await call(), "ok");
  });

  it("a call that fails frees its place too", async () => {
    let fail = true;
    const { shedding, call } = shedServer(1, () => (fail ? Promise.reject(new Error("boom")) : Promise.resolve("ok")));
    await assert.rejects(call(), (error: unknown) => error instanceof RpcError && error.code === Code.INTERNAL);
    assert.equal(shedding.inFlight, 0);
    fail = false;
    assert.equal(await call(), "ok");
  });

  it("refuses a limit that is not a whole number of at least 1", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => loadShedding(bad, () => 0), /at least 1/);
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
