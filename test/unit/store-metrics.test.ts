import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { instrumentStores } from "../../src/app/instrument-stores.js";
import type { Stores } from "../../src/app/open-stores.js";
import { createStoreMetrics, STORE_SECONDS_BUCKETS } from "../../src/toolkit/telemetry/store-metrics.js";

/** `name{labels} value` lines of a rendered exposition, by series. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    found.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return found;
}

const COUNT = "switchyard_store_operation_seconds_count";

class Shelf {
  readonly label = "shelf";
  private readonly items = new Map<string, string>();
  async put(key: string, value: string): Promise<void> {
    this.items.set(key, value);
  }
  async get(key: string): Promise<string | undefined> {
    return this.items.get(key);
  }
  async broken(): Promise<never> {
    throw new Error("disk on fire");
  }
  size(): number {
    return this.items.size;
  }
}

describe("store metrics", () => {
  it("times every method, own or inherited, by outcome, and keeps `this` and other members", async () => {
    const metrics = createStoreMetrics();
    const shelf = metrics.instrument(new Shelf(), { service: "shop", store: "memory" });
    await shelf.put("a", "1");
    assert.equal(await shelf.get("a"), "1");
    assert.equal(await shelf.get("b"), undefined);
    await assert.rejects(shelf.broken(), /disk on fire/);
    assert.equal(shelf.size(), 1);
    assert.equal(shelf.label, "shelf");
    const text = metrics.render();
    const found = samples(text);
    const count = (operation: string, outcome: string): number | undefined =>
      found.get(`${COUNT}{service="shop",store="memory",operation="${operation}",outcome="${outcome}"}`);
    assert.deepEqual(
      { putOk: count("put", "ok"), getOk: count("get", "ok"), getError: count("get", "error"), broken: count("broken", "error"), size: count("size", "ok") },
      { putOk: 1, getOk: 2, getError: 0, broken: 1, size: 1 },
    );
    // The label data is not a method.
    assert.equal(count("label", "ok"), undefined);
    const buckets = [...found.keys()].filter((key) => key.startsWith("switchyard_store_operation_seconds_bucket") && key.includes('operation="get",outcome="ok"'));
    assert.equal(buckets.length, STORE_SECONDS_BUCKETS.length + 1);
    assert.match(text, /^# TYPE switchyard_store_operation_seconds histogram$/m);
  });

  it("counts a method that throws synchronously as an error", () => {
    const metrics = createStoreMetrics();
    const store = metrics.instrument(
      {
        fail(): number {
          throw new Error("no");
        },
      },
      { service: "s", store: "x" },
    );
    assert.throws(() => store.fail(), /no/);
    assert.equal(samples(metrics.render()).get(`${COUNT}{service="s",store="x",operation="fail",outcome="error"}`), 1);
  });

  it("reads pool figures at every render, and leaves the pool families out without a pool", () => {
    const metrics = createStoreMetrics();
    assert.doesNotMatch(metrics.render(), /switchyard_store_pool_/);
    let open = 1;
    metrics.observePool({ store: "postgres" }, () => ({ open, idle: open - 1, waiting: 0, max: 10 }));
    assert.equal(samples(metrics.render()).get('switchyard_store_pool_open_connections{store="postgres"}'), 1);
    open = 4;
    const found = samples(metrics.render());
    assert.deepEqual(
      ["open_connections", "idle_connections", "max_connections", "waiting_requests"].map((name) => found.get(`switchyard_store_pool_${name}{store="postgres"}`)),
      [4, 3, 10, 0],
    );
  });

  it("leaves the stores as opened when metrics are off, and times both when on", async () => {
    const stores: Stores = {
      users: { find: async () => undefined, insertIfAbsent: async (user) => user },
      orders: { insertIfAbsent: async (order) => order, listForUser: async () => [] },
      kind: "postgres",
      pool: () => ({ totalCount: 3, idleCount: 2, waitingCount: 0, max: 10 }),
      describe: "test",
      close: async () => undefined,
    };
    assert.equal(instrumentStores(stores, undefined), stores);
    const metrics = createStoreMetrics();
    const timed = instrumentStores(stores, metrics);
    await timed.users?.find("u1");
    await timed.orders?.listForUser("u1", 1);
    const found = samples(metrics.render());
    assert.equal(found.get(`${COUNT}{service="user",store="postgres",operation="find",outcome="ok"}`), 1);
    assert.equal(found.get(`${COUNT}{service="order",store="postgres",operation="listForUser",outcome="ok"}`), 1);
    assert.equal(found.get('switchyard_store_pool_open_connections{store="postgres"}'), 3);
    assert.equal(timed.describe, "test");
  });
});
