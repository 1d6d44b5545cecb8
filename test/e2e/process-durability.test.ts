// kill -9 of `switchyard serve` while CreateOrder calls are in flight, then a
// restart on the same data: every order the server acknowledged is still there.
// For SQLite (a data dir) and for PostgreSQL (--database-url, a fresh schema).
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient, type Client } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { startServer, tempDir, type Exit, type ServeOptions } from "../support/cli-process.js";
import { createTestSchema } from "../support/postgres.js";

/** Calls made one after another by each driver; the kill comes once this many are acknowledged in all. */
const KILL_AFTER_ACKNOWLEDGED = 150;
/** Concurrent drivers, one user each, so that several calls are in flight at the kill. */
const DRIVERS = 4;
/** ListOrdersByUser's largest page: no driver may get more acknowledged than this. */
const MAX_LIST_LIMIT = 500;

interface Driver {
  readonly userId: string;
  readonly acknowledged: string[];
  /** Order ids sent but not answered (yet): in flight. */
  readonly pending: Set<string>;
  /** Order ids whose call failed (the kill): they may or may not be stored. */
  readonly failed: string[];
  readonly done: Promise<void>;
}

function clientsFor(t: TestContext, address: string) {
  const userTransport = createGrpcTransport({ target: address, services: [UserServiceDefinition] });
  const orderTransport = createGrpcTransport({ target: address, services: [OrderServiceDefinition] });
  t.after(() => {
    userTransport.close();
    orderTransport.close();
  });
  return {
    users: createClient(UserServiceDefinition, userTransport),
    orders: createClient(OrderServiceDefinition, orderTransport),
  };
}

/** Sends CreateOrder calls one after another until one fails, recording what was acknowledged. */
function drive(orders: Client<typeof OrderServiceDefinition>, userId: string, onAcknowledged: () => void): Driver {
  const acknowledged: string[] = [];
  const pending = new Set<string>();
  const failed: string[] = [];
  const done = (async () => {
    for (let i = 0; i < MAX_LIST_LIMIT; i++) {
      const orderId = `${userId}-order-${i}`;
      pending.add(orderId);
      try {
        const order = await orders.createOrder({ orderId, userId });
        assert.equal(order.orderId, orderId);
        acknowledged.push(orderId);
      } catch (error) {
        if (!(error instanceof ClientError)) throw error;
        failed.push(orderId);
        return;
      } finally {
        pending.delete(orderId);
      }
      onAcknowledged();
    }
    throw new Error(`${userId}: the server was never killed`);
  })();
  return { userId, acknowledged, pending, failed, done };
}

async function killMidStreamAndRestart(t: TestContext, serve: ServeOptions): Promise<void> {
  const server = await startServer(t, serve);
  const before = clientsFor(t, server.address);
  const userIds = Array.from({ length: DRIVERS }, (_, i) => `durable-${i}`);
  for (const userId of userIds) {
    await before.users.createUser({ userId, name: `User ${userId}`, email: `${userId}@example.com` });
  }

  let total = 0;
  let inFlightAtKill = 0;
  let killed: Promise<Exit> | undefined;
  const drivers: Driver[] = [];
  const onAcknowledged = (): void => {
    total++;
    if (total < KILL_AFTER_ACKNOWLEDGED || killed !== undefined) return;
    // Let every driver send its next call first, so the kill lands with calls in flight.
    killed = new Promise((resolve) => setImmediate(resolve)).then(() => {
      inFlightAtKill = drivers.reduce((sum, driver) => sum + driver.pending.size, 0);
      return server.stop("SIGKILL");
    });
  };
  drivers.push(...userIds.map((userId) => drive(before.orders, userId, onAcknowledged)));
  await Promise.all(drivers.map((driver) => driver.done));
  assert.ok(killed, "the server was never killed");
  const exit = await killed;
  assert.equal(exit.signal, "SIGKILL", `the server ended on its own (code ${exit.code}):\n${exit.stderr}`);
  assert.ok(inFlightAtKill > 0, "no call was in flight at the kill");

  const acknowledged = drivers.reduce((sum, driver) => sum + driver.acknowledged.length, 0);
  assert.ok(acknowledged >= KILL_AFTER_ACKNOWLEDGED, `only ${acknowledged} orders were acknowledged`);
  for (const driver of drivers) assert.equal(driver.failed.length, 1, `${driver.userId} stopped without a failed call`);

  // Restart on the same data; a new port, so no call from before reaches it.
  const restarted = await startServer(t, { ...serve, dataDir: server.dataDir });
  const after = clientsFor(t, restarted.address);
  for (const driver of drivers) {
    const { orders } = await after.orders.listOrdersByUser({ userId: driver.userId, limit: MAX_LIST_LIMIT });
    const stored = new Set(orders.map((order) => order.orderId));
    const lost = driver.acknowledged.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `${driver.userId}: ${lost.length} of ${driver.acknowledged.length} acknowledged orders were lost`);
    // Nothing appears that was never sent: only the acknowledged ones and the one cut off by the kill.
    const sent = new Set([...driver.acknowledged, ...driver.failed]);
    assert.deepEqual(
      orders.filter((order) => !sent.has(order.orderId)),
      [],
      `${driver.userId}: orders that were never sent`,
    );
    for (const order of orders) {
      assert.equal(order.userId, driver.userId);
      assert.equal(order.status, "created");
    }

    const latest = await after.orders.getOrderByUser({ userId: driver.userId });
    assert.ok(sent.has(latest.orderId), `${driver.userId}: latest order ${latest.orderId} was never sent`);
    // Users survived the kill too.
    const user = await after.users.getUser({ userId: driver.userId });
    assert.equal(user.name, `User ${driver.userId}`);
  }

  t.diagnostic(`${acknowledged} orders acknowledged, ${inFlightAtKill} in flight at the kill, all found after the restart`);

  // The restarted server takes new orders for the same users.
  const fresh = await after.orders.createOrder({ orderId: "after-restart", userId: "durable-0" });
  assert.equal(fresh.status, "created");
  const exitAfter = await restarted.stop("SIGTERM");
  assert.equal(exitAfter.code, 0, exitAfter.stderr);
}

describe("switchyard serve: kill -9 and restart", () => {
  it("keeps every acknowledged order on SQLite (same --data-dir)", async (t) => {
    await killMidStreamAndRestart(t, { dataDir: await tempDir(t, "switchyard-durability-") });
  });

  it("keeps every acknowledged order on PostgreSQL (same --database-url)", async (t) => {
    const schema = await createTestSchema();
    t.after(() => schema.drop());
    await killMidStreamAndRestart(t, { databaseUrl: schema.url });
  });
});
