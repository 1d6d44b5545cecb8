import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Stores } from "../../src/app/open-stores.js";
import type { Order } from "../../src/services/order/domain/order.js";
import type { OrderStore } from "../../src/services/order/domain/order-store.js";
import { type StoreLocation, storeBackends } from "../support/store-backends.js";

const BACKENDS = storeBackends("order");

function ordersOf(stores: Stores): OrderStore {
  assert.ok(stores.orders, "openStores did not open an order store");
  return stores.orders;
}

const newUserId = (): string => `user-${randomUUID()}`;

function newOrder(userId: string, createdAt = 1_700_000_000_000): Order {
  return { id: `order-${randomUUID()}`, userId, status: "created", createdAt };
}

const ids = (orders: readonly Order[]): string[] => orders.map((order) => order.id);

for (const backend of BACKENDS) {
  describe(`OrderStore on ${backend.name}`, () => {
    let location: StoreLocation | undefined;
    let stores: Stores | undefined;
    let orders: OrderStore;

    before(async () => {
      location = await backend.create();
      stores = await location.open();
      orders = ordersOf(stores);
    });

    after(async () => {
      await stores?.close();
      await location?.remove();
    });

    it("listForUser returns nothing for a user without orders", async () => {
      assert.deepEqual(await orders.listForUser(newUserId(), 10), []);
    });

    it("insertIfAbsent stores a new order and returns it, createdAt intact beyond 32 bits", async () => {
      const order = newOrder(newUserId(), 4_102_444_800_123);
      assert.deepEqual(await orders.insertIfAbsent(order), order);
      assert.deepEqual(await orders.listForUser(order.userId, 10), [order]);
    });

    it("insertIfAbsent keeps and returns the existing order when the id is taken, even by another user", async () => {
      const first = newOrder(newUserId());
      await orders.insertIfAbsent(first);
      const other = { ...first, userId: newUserId(), createdAt: first.createdAt + 1 };
      assert.deepEqual(await orders.insertIfAbsent(other), first);
      assert.deepEqual(await orders.listForUser(other.userId, 10), []);
    });

    it("20 concurrent insertIfAbsent calls for one id store one order and all return it", async () => {
      const id = `order-${randomUUID()}`;
      const userId = newUserId();
      const candidates = Array.from({ length: 20 }, (_, i) => ({ id, userId, status: "created", createdAt: 1_000 + i }));
      const results = await Promise.all(candidates.map((candidate) => orders.insertIfAbsent(candidate)));
      const stored = await orders.listForUser(userId, 100);
      assert.equal(stored.length, 1);
      const [winner] = stored;
      for (const result of results) assert.deepEqual(result, winner);
    });

    it("listForUser puts the most recently inserted first, whatever createdAt says", async () => {
      const userId = newUserId();
      // createdAt runs backwards (a clock stepping back) to show order comes from insertion.
      const inserted = [newOrder(userId, 3_000), newOrder(userId, 2_000), newOrder(userId, 1_000)];
      for (const order of inserted) await orders.insertIfAbsent(order);
      assert.deepEqual(ids(await orders.listForUser(userId, 10)), ids([...inserted].reverse()));
    });

    it("listForUser returns at most limit orders, the most recent ones", async () => {
      const userId = newUserId();
      const inserted = Array.from({ length: 5 }, () => newOrder(userId));
      for (const order of inserted) await orders.insertIfAbsent(order);
      assert.deepEqual(ids(await orders.listForUser(userId, 2)), ids(inserted.slice(-2).reverse()));
      assert.deepEqual(ids(await orders.listForUser(userId, 1)), ids(inserted.slice(-1)));
    });

    it("listForUser returns only the given user's orders", async () => {
      const mine = newOrder(newUserId());
      const theirs = newOrder(newUserId());
      await orders.insertIfAbsent(mine);
      await orders.insertIfAbsent(theirs);
      assert.deepEqual(await orders.listForUser(mine.userId, 10), [mine]);
    });

    it("inserting an existing order again does not make it the most recent", async () => {
      const userId = newUserId();
      const older = newOrder(userId);
      const newer = newOrder(userId);
      await orders.insertIfAbsent(older);
      await orders.insertIfAbsent(newer);
      await orders.insertIfAbsent(older);
      assert.deepEqual(ids(await orders.listForUser(userId, 10)), [newer.id, older.id]);
    });

    it("orders survive closing and reopening the store", async () => {
      const userId = newUserId();
      const placed = [newOrder(userId), newOrder(userId)];
      for (const order of placed) await orders.insertIfAbsent(order);
      await stores?.close();
      assert.ok(location);
      stores = await location.open();
      orders = ordersOf(stores);
      assert.deepEqual(await orders.listForUser(userId, 10), [...placed].reverse());
    });

    it("opening an already migrated store again, even twice at once, applies no migration twice", async () => {
      const order = newOrder(newUserId());
      await orders.insertIfAbsent(order);
      assert.ok(location);
      const again = await Promise.all([location.open(), location.open()]);
      try {
        for (const reopened of again) assert.deepEqual(await ordersOf(reopened).listForUser(order.userId, 10), [order]);
      } finally {
        await Promise.all(again.map((reopened) => reopened.close()));
      }
    });
  });
}

describe("OrderStore migrations on a fresh database", () => {
  for (const backend of BACKENDS) {
    it(`${backend.name}: two opens racing on an empty database both succeed`, async () => {
      const location = await backend.create();
      try {
        const racing = await Promise.all([location.open(), location.open()]);
        const order = newOrder(newUserId());
        await ordersOf(racing[0]).insertIfAbsent(order);
        assert.deepEqual(await ordersOf(racing[1]).listForUser(order.userId, 10), [order]);
        await Promise.all(racing.map((stores) => stores.close()));
      } finally {
        await location.remove();
      }
    });
  }
});
