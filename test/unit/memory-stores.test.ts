import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMemoryOrderStore } from "../../src/services/order/store/memory-order-store.js";
import { createMemoryUserStore } from "../../src/services/user/store/memory-user-store.js";

describe("memory UserStore", () => {
  it("finds nothing for an id never stored", async () => {
    assert.equal(await createMemoryUserStore().find("nobody"), undefined);
  });

  it("keeps the first user stored under an id and returns it to later inserts", async () => {
    const users = createMemoryUserStore();
    const first = { id: "u1", name: "Ada", email: "ada@example.com" };
    assert.deepEqual(await users.insertIfAbsent(first), first);
    assert.deepEqual(await users.insertIfAbsent({ ...first, name: "Other" }), first);
    assert.deepEqual(await users.find("u1"), first);
  });

  it("stores a copy, so the caller changing its object later changes nothing", async () => {
    const users = createMemoryUserStore();
    const user = { id: "u1", name: "Ada", email: "ada@example.com" };
    await users.insertIfAbsent(user);
    user.name = "Changed";
    assert.equal((await users.find("u1"))?.name, "Ada");
  });
});

describe("memory OrderStore", () => {
  const order = (id: string, userId = "u1") => ({ id, userId, status: "created", createdAt: 1 });

  it("lists a user's orders newest first, at most `limit`, and only theirs", async () => {
    const orders = createMemoryOrderStore();
    for (const id of ["o1", "o2", "o3"]) await orders.insertIfAbsent(order(id));
    await orders.insertIfAbsent(order("other", "u2"));
    assert.deepEqual((await orders.listForUser("u1", 10)).map((o) => o.id), ["o3", "o2", "o1"]);
    assert.deepEqual((await orders.listForUser("u1", 2)).map((o) => o.id), ["o3", "o2"]);
    assert.deepEqual(await orders.listForUser("nobody", 10), []);
  });

  it("is idempotent on the order id: a replay returns the stored order and adds nothing", async () => {
    const orders = createMemoryOrderStore();
    await orders.insertIfAbsent(order("o1"));
    assert.equal((await orders.insertIfAbsent(order("o1", "u2"))).userId, "u1");
    assert.deepEqual((await orders.listForUser("u1", 10)).map((o) => o.id), ["o1"]);
    assert.deepEqual(await orders.listForUser("u2", 10), []);
  });
});
