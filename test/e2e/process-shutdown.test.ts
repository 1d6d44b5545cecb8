// Graceful shutdown of `switchyard serve`, seen from outside the process:
// SIGTERM drains calls in flight, refuses new ones, reports NOT_SERVING, and
// the drain timeout bounds a call that does not finish.
//
// A call is made slow deterministically with the real CLI: UserService and
// OrderService run as two processes, and OrderService reaches UserService
// through a TCP proxy in this test that can hold back UserService's answers.
// A CreateOrder then waits inside the order process, for as long as the test
// wants, on a GetUser that UserService has already answered.
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient, type Client } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import type { Transport } from "../../src/toolkit/client/transport.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { pollUntil, startServer, type CleanupScope, type ServerProcess } from "../support/cli-process.js";

/**
 * A TCP proxy to one port. While holding, the bytes the upstream sends back are
 * kept (in order) instead of forwarded; release() forwards them and passes
 * everything through again. Requests always go through.
 */
class HoldingProxy {
  private holding = false;
  private readonly held: Array<() => void> = [];
  private readonly sockets = new Set<net.Socket>();
  heldBytes = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(t: CleanupScope, upstreamPort: number): Promise<HoldingProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
    const proxy = new HoldingProxy(server, (server.address() as net.AddressInfo).port);
    server.on("connection", (client) => proxy.connect(client, upstreamPort));
    t.after(() => proxy.close());
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  hold(): void {
    this.holding = true;
  }

  release(): void {
    for (const forward of this.held.splice(0)) forward();
    this.holding = false;
  }

  close(): Promise<void> {
    this.release();
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private connect(client: net.Socket, upstreamPort: number): void {
    const upstream = net.connect(upstreamPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on("close", () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
      socket.on("error", () => undefined);
    }
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      if (!this.holding) {
        client.write(chunk);
        return;
      }
      this.heldBytes += chunk.length;
      this.held.push(() => client.write(chunk));
    });
  }
}

interface Clients {
  readonly users: Client<typeof UserServiceDefinition>;
  readonly orders: Client<typeof OrderServiceDefinition>;
}

function clientsFor(t: CleanupScope, userAddress: string, orderAddress: string): Clients {
  const transports: Transport[] = [
    createGrpcTransport({ target: userAddress, services: [UserServiceDefinition] }),
    createGrpcTransport({ target: orderAddress, services: [OrderServiceDefinition] }),
  ];
  t.after(() => transports.forEach((transport) => transport.close()));
  const [userTransport, orderTransport] = transports as [Transport, Transport];
  return {
    users: createClient(UserServiceDefinition, userTransport),
    orders: createClient(OrderServiceDefinition, orderTransport),
  };
}

/** A user process and an order process that reaches it through a HoldingProxy. */
async function startSplitWithProxy(t: CleanupScope, orderFlags: { drainTimeoutMs?: number } = {}) {
  const user = await startServer(t, { services: "user" });
  const proxy = await HoldingProxy.start(t, user.port);
  const order = await startServer(t, { services: "order", userService: proxy.address, ...orderFlags });
  const clients = clientsFor(t, user.address, order.address);
  await clients.users.createUser({ userId: "ada", name: "Ada", email: "ada@example.com" });
  // Opens the order process's channel to UserService (HTTP/2 settings included)
  // before anything is held, so that holding only delays GetUser's answer.
  await clients.orders.createOrder({ orderId: "warm-up", userId: "ada" });
  return { user, proxy, order, clients };
}

function getUserCalls(user: ServerProcess): number {
  return user.logs().filter((line) => line.msg === "call finished" && line["method"] === "service.UserService/GetUser").length;
}

/**
 * Starts a CreateOrder and resolves once it is certainly in flight inside the
 * order process: UserService has answered its GetUser, and the proxy holds that answer.
 * The order process gives that GetUser at most 5 s (its client's default
 * timeout), so what a test does before release() must stay well within that:
 * no process spawns in between.
 */
async function startSlowCreateOrder(
  setup: Awaited<ReturnType<typeof startSplitWithProxy>>,
  orderId: string,
): Promise<{ readonly result: Promise<{ ok: true; orderId: string } | { ok: false; error: unknown }> }> {
  const before = getUserCalls(setup.user);
  setup.proxy.hold();
  const call = setup.clients.orders.createOrder({ orderId, userId: "ada" }, { timeoutMs: 60_000 }).then(
    (order) => ({ ok: true as const, orderId: order.orderId }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  await pollUntil("the slow CreateOrder's GetUser to reach UserService and its answer to be held", () =>
    getUserCalls(setup.user) > before && setup.proxy.heldBytes > 0 ? true : undefined,
  );
  // Wrapped: an async function returning the bare promise would wait for it.
  return { result: call };
}

/** Opens grpc.health.v1.Health/Watch for `service` and records every status it reports. */
function watchHealth(t: CleanupScope, address: string, service = "") {
  const Health = grpc.makeGenericClientConstructor(healthService, "Health");
  const client = new Health(address, grpc.credentials.createInsecure());
  const watch = healthService["Watch"];
  if (watch === undefined) throw new Error("grpc-health-check has no Watch method");
  const statuses: string[] = [];
  let ended: grpc.StatusObject | undefined;
  const stream = client.makeServerStreamRequest(
    watch.path,
    watch.requestSerialize,
    watch.responseDeserialize,
    { service },
    new grpc.Metadata(),
    {},
  );
  stream.on("data", (response: { status?: unknown }) => statuses.push(String(response.status)));
  stream.on("status", (status: grpc.StatusObject) => (ended = status));
  stream.on("error", () => undefined);
  const cancel = (): void => {
    stream.cancel();
    client.close();
  };
  t.after(cancel);
  return { statuses, ended: () => ended, cancel };
}

function withoutRepeats(statuses: readonly string[]): string[] {
  return statuses.filter((status, i) => status !== statuses[i - 1]);
}

async function expectCode(promise: Promise<unknown>, code: Code, what: string): Promise<ClientError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ClientError, `${what}: not a ClientError: ${String(error)}`);
    assert.equal(Code[error.code], Code[code], `${what}: ${error.message}`);
    return error;
  }
  assert.fail(`${what}: succeeded, expected ${Code[code]}`);
}

describe("switchyard serve: graceful shutdown", () => {
  it("SIGTERM finishes the call in flight, reports NOT_SERVING, refuses new calls and exits 0", async (t) => {
    const setup = await startSplitWithProxy(t, { drainTimeoutMs: 30_000 });
    const { order, proxy, clients } = setup;
    const overall = watchHealth(t, order.address);
    const orderHealth = watchHealth(t, order.address, "service.OrderService");
    await pollUntil("the health watch to report SERVING", () => (overall.statuses.includes("SERVING") ? true : undefined));
    await pollUntil("the OrderService watch to report SERVING", () => (orderHealth.statuses.includes("SERVING") ? true : undefined));

    const { result: slowCall } = await startSlowCreateOrder(setup, "in-flight");
    order.signal("SIGTERM");
    await order.waitForLog((line) => line.msg === "shutting down: draining calls in flight", "about draining", 10_000);

    // Health turns NOT_SERVING for the server and for each service while the call drains.
    await pollUntil("the health watch to report NOT_SERVING", () => (overall.statuses.includes("NOT_SERVING") ? true : undefined));
    await pollUntil("the OrderService watch to report NOT_SERVING", () =>
      orderHealth.statuses.includes("NOT_SERVING") ? true : undefined,
    );
    // Never SERVING again once draining. (Consecutive repeats are dropped: the
    // server currently sends NOT_SERVING twice, once per setAllNotServing call.)
    assert.deepEqual(withoutRepeats(overall.statuses), ["SERVING", "NOT_SERVING"]);
    assert.deepEqual(withoutRepeats(orderHealth.statuses), ["SERVING", "NOT_SERVING"]);
    // An open Watch stream is a call in flight too: a health checker that keeps
    // watching holds the drain open. Hang up, as a load balancer would on NOT_SERVING.
    overall.cancel();
    orderHealth.cancel();

    // New calls are refused, on a new channel and on the channel of the call in flight.
    const fresh = clientsFor(t, setup.user.address, order.address);
    await expectCode(fresh.orders.getOrderByUser({ userId: "ada" }), Code.UNAVAILABLE, "a call on a new channel after SIGTERM");
    await expectCode(
      clients.orders.createOrder({ orderId: "after-sigterm", userId: "ada" }),
      Code.UNAVAILABLE,
      "a call on the existing channel after SIGTERM",
    );

    // Still draining: the process waits for the call in flight.
    assert.equal(order.hasExited, false, `the order process exited while a call was in flight:\n${order.stderr()}`);
    proxy.release();
    const result = await slowCall;
    assert.ok(result.ok, `the call in flight failed: ${result.ok ? "" : String(result.error)}`);
    assert.equal(result.orderId, "in-flight");

    const exit = await order.waitForExit(10_000);
    assert.equal(exit.code, 0, `exit code ${exit.code}, signal ${exit.signal}:\n${exit.stderr}`);
    assert.ok(order.logs().some((line) => line.msg === "stopped"));
    assert.ok(!order.logs().some((line) => line.msg === "drain timeout reached; cancelling calls still in flight"));
    const createOrders = order.logs().filter((line) => line.msg === "call finished" && line["method"] === "service.OrderService/CreateOrder");
    // The warm-up and the drained call; the calls refused during the drain never reached a handler.
    assert.deepEqual(
      createOrders.map((line) => line["code"]),
      ["OK", "OK"],
    );

    // What the drained call wrote is there after a restart on the same data dir; what was refused is not.
    const again = await startServer(t, { services: "order", userService: setup.user.address, dataDir: order.dataDir });
    const after = clientsFor(t, setup.user.address, again.address);
    const listed = await after.orders.listOrdersByUser({ userId: "ada", limit: 500 });
    assert.deepEqual(listed.orders.map((o) => o.orderId).sort(), ["in-flight", "warm-up"]);
    await again.stop();
    await setup.user.stop();
  });

  it("SIGTERM with nothing in flight exits 0 at once, even with a long drain timeout", async (t) => {
    const server = await startServer(t, { drainTimeoutMs: 60_000 });
    // A client that stays connected (idle) must not hold up the exit.
    const clients = clientsFor(t, server.address, server.address);
    await clients.users.createUser({ userId: "ada", name: "Ada", email: "ada@example.com" });
    await clients.orders.createOrder({ orderId: "o-1", userId: "ada" });

    const signalled = performance.now();
    const exit = await server.stop("SIGTERM", 10_000);
    const tookMs = performance.now() - signalled;
    assert.equal(exit.code, 0, `exit code ${exit.code}, signal ${exit.signal}:\n${exit.stderr}`);
    // Far below the drain timeout (generous for a loaded machine).
    assert.ok(tookMs < 8_000, `took ${Math.round(tookMs)} ms to exit with nothing in flight`);
    const messages = server.logs().map((line) => line.msg);
    assert.ok(messages.includes("shutting down: draining calls in flight"));
    assert.ok(messages.includes("stopped"));
  });

  it("SIGINT stops the server the same way", async (t) => {
    const server = await startServer(t, { drainTimeoutMs: 60_000 });
    const exit = await server.stop("SIGINT", 10_000);
    assert.equal(exit.code, 0, `exit code ${exit.code}, signal ${exit.signal}:\n${exit.stderr}`);
    assert.ok(server.logs().some((line) => line.msg === "shutting down: draining calls in flight" && line["signal"] === "SIGINT"));
  });

  it("--drain-timeout bounds a call that does not finish: it is cancelled and the process exits 0", async (t) => {
    const drainTimeoutMs = 500;
    const setup = await startSplitWithProxy(t, { drainTimeoutMs });
    const { result: slowCall } = await startSlowCreateOrder(setup, "never-answered");

    const signalled = performance.now();
    setup.order.signal("SIGTERM");
    const exit = await setup.order.waitForExit(10_000);
    const tookMs = performance.now() - signalled;
    assert.equal(exit.code, 0, `exit code ${exit.code}, signal ${exit.signal}:\n${exit.stderr}`);
    // Bounded by the drain timeout, well before the call's own limits (5 s for
    // the GetUser inside it, 60 s for the CreateOrder).
    assert.ok(tookMs >= drainTimeoutMs - 50, `exited after ${Math.round(tookMs)} ms, before the drain timeout`);
    assert.ok(tookMs < drainTimeoutMs + 4_000, `took ${Math.round(tookMs)} ms to exit with --drain-timeout ${drainTimeoutMs}`);
    const warning = setup.order.logs().find((line) => line.msg === "drain timeout reached; cancelling calls still in flight");
    assert.ok(warning, `no drain timeout warning:\n${exit.stderr}`);
    assert.equal(warning["drainTimeoutMs"], drainTimeoutMs);

    const result = await slowCall;
    assert.equal(result.ok, false, "the call cut off by the drain timeout cannot have succeeded");
    assert.ok(result.error instanceof ClientError, String(result.error));
    assert.ok(
      [Code.UNAVAILABLE, Code.CANCELLED, Code.INTERNAL].includes(result.error.code),
      `unexpected status ${Code[result.error.code]}: ${result.error.message}`,
    );
    setup.proxy.release();
    await setup.user.stop();
  });
});
