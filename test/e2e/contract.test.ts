import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code } from "../../src/toolkit/rpc/code.js";
import { CONFIGURATIONS, configName, expectCallError, startSystem, type System } from "../support/system.js";

const newId = (prefix: string): string => `${prefix}-${randomUUID()}`;

for (const config of CONFIGURATIONS) {
  describe(`the public contract, ${configName(config)}`, () => {
    let system: System | undefined;
    const sys = (): System => {
      assert.ok(system, "the system did not start");
      return system;
    };

    before(async () => {
      system = await startSystem(config);
    });
    after(async () => {
      await system?.close();
    });

    /** Registers a fresh user and returns its id. */
    async function newUser(): Promise<string> {
      const userId = newId("user");
      await sys().user.createUser({ userId, name: "Ada Lovelace", email: "ada@example.com" });
      return userId;
    }

    /** Places orders for the user in the given sequence and returns their ids. */
    async function placeOrders(userId: string, count: number): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const orderId = newId(`order${i}`);
        await sys().order.createOrder({ orderId, userId });
        ids.push(orderId);
      }
      return ids;
    }

    describe("GetUser", () => {
      it("rejects an empty user_id with INVALID_ARGUMENT and a BadRequest violation on user_id", async () => {
        await expectCallError(sys().user.getUser({ userId: "" }), {
          code: Code.INVALID_ARGUMENT,
          reason: "INVALID_ARGUMENT",
          fields: ["user_id"],
        });
      });

      it("answers NOT_FOUND with reason USER_NOT_FOUND for an unknown user", async () => {
        const userId = newId("nobody");
        const error = await expectCallError(sys().user.getUser({ userId }), {
          code: Code.NOT_FOUND,
          reason: "USER_NOT_FOUND",
        });
        assert.equal(error.metadata.user_id, userId);
      });

      it("returns a registered user's id, name and email", async () => {
        const userId = await newUser();
        assert.deepEqual(await sys().user.getUser({ userId }), {
          userId,
          name: "Ada Lovelace",
          email: "ada@example.com",
        });
      });
    });

    describe("CreateUser", () => {
      it("rejects an empty id, an empty name and a bad email with INVALID_ARGUMENT listing each field", async () => {
        await expectCallError(sys().user.createUser({ userId: "", name: "", email: "not-an-email" }), {
          code: Code.INVALID_ARGUMENT,
          reason: "INVALID_ARGUMENT",
          fields: ["user_id", "name", "email"],
        });
      });

      it("rejects a bad email alone with a violation on email only", async () => {
        await expectCallError(sys().user.createUser({ userId: newId("user"), name: "Ada", email: "ada@" }), {
          code: Code.INVALID_ARGUMENT,
          fields: ["email"],
        });
      });

      it("accepts the same user twice, answering OK with the same user both times", async () => {
        const request = { userId: newId("user"), name: "Grace Hopper", email: "grace@example.com" };
        const first = await sys().user.createUser(request);
        const second = await sys().user.createUser(request);
        assert.deepEqual(first, request);
        assert.deepEqual(second, request);
      });

      it("answers ALREADY_EXISTS for the same id with different data, and keeps the first user", async () => {
        const userId = newId("user");
        await sys().user.createUser({ userId, name: "Grace Hopper", email: "grace@example.com" });
        await expectCallError(sys().user.createUser({ userId, name: "Someone Else", email: "else@example.com" }), {
          code: Code.ALREADY_EXISTS,
          reason: "USER_ID_TAKEN",
        });
        assert.equal((await sys().user.getUser({ userId })).name, "Grace Hopper");
      });
    });

    describe("CreateOrder", () => {
      it("rejects empty order_id and user_id with INVALID_ARGUMENT listing both", async () => {
        await expectCallError(sys().order.createOrder({ orderId: "", userId: "" }), {
          code: Code.INVALID_ARGUMENT,
          reason: "INVALID_ARGUMENT",
          fields: ["order_id", "user_id"],
        });
      });

      it("answers FAILED_PRECONDITION (never UNKNOWN) for an unknown user, and writes nothing", async () => {
        const userId = newId("nobody");
        await expectCallError(sys().order.createOrder({ orderId: newId("order"), userId }), {
          code: Code.FAILED_PRECONDITION,
          reason: "USER_NOT_FOUND",
        });
      });

      it("places an order with status created, the user's id and the order's id", async () => {
        const userId = await newUser();
        const orderId = newId("order");
        assert.deepEqual(await sys().order.createOrder({ orderId, userId }), { status: "created", userId, orderId });
      });

      it("returns the same order for the same request again, and stores it once", async () => {
        const userId = await newUser();
        const orderId = newId("order");
        const first = await sys().order.createOrder({ orderId, userId });
        const second = await sys().order.createOrder({ orderId, userId });
        assert.deepEqual(second, first);
        const { orders } = await sys().order.listOrdersByUser({ userId, limit: 0 });
        assert.deepEqual(orders, [first]);
      });

      it("answers ALREADY_EXISTS when the order_id belongs to another user", async () => {
        const owner = await newUser();
        const other = await newUser();
        const orderId = newId("order");
        await sys().order.createOrder({ orderId, userId: owner });
        await expectCallError(sys().order.createOrder({ orderId, userId: other }), {
          code: Code.ALREADY_EXISTS,
          reason: "ORDER_ID_TAKEN",
        });
        const { orders } = await sys().order.listOrdersByUser({ userId: other, limit: 0 });
        assert.deepEqual(orders, []);
      });
    });

    describe("GetOrderByUser", () => {
      it("returns the user's most recent order, with its user_id and order_id", async () => {
        const userId = await newUser();
        const ids = await placeOrders(userId, 3);
        assert.deepEqual(await sys().order.getOrderByUser({ userId }), {
          status: "created",
          userId,
          orderId: ids[2],
        });
      });

      it("still returns the most recent order after an older one is re-sent", async () => {
        const userId = await newUser();
        const [older, newer] = await placeOrders(userId, 2);
        assert.ok(older !== undefined && newer !== undefined);
        await sys().order.createOrder({ orderId: older, userId });
        assert.equal((await sys().order.getOrderByUser({ userId })).orderId, newer);
      });

      it("answers NOT_FOUND for an unknown user", async () => {
        await expectCallError(sys().order.getOrderByUser({ userId: newId("nobody") }), {
          code: Code.NOT_FOUND,
          reason: "USER_NOT_FOUND",
        });
      });

      it("answers NOT_FOUND for a user without orders", async () => {
        const userId = await newUser();
        await expectCallError(sys().order.getOrderByUser({ userId }), { code: Code.NOT_FOUND, reason: "NO_ORDERS" });
      });

      it("rejects an empty user_id with INVALID_ARGUMENT", async () => {
        await expectCallError(sys().order.getOrderByUser({ userId: "" }), {
          code: Code.INVALID_ARGUMENT,
          fields: ["user_id"],
        });
      });
    });

    describe("ListOrdersByUser", () => {
      it("lists the user's orders most recent first, and no one else's", async () => {
        const userId = await newUser();
        const ids = await placeOrders(userId, 3);
        await placeOrders(await newUser(), 1);
        const { orders } = await sys().order.listOrdersByUser({ userId, limit: 0 });
        assert.deepEqual(
          orders,
          [...ids].reverse().map((orderId) => ({ status: "created", userId, orderId })),
        );
      });

      it("returns at most limit orders, the most recent ones", async () => {
        const userId = await newUser();
        const ids = await placeOrders(userId, 3);
        const { orders } = await sys().order.listOrdersByUser({ userId, limit: 2 });
        assert.deepEqual(
          orders.map((order) => order.orderId),
          [ids[2], ids[1]],
        );
      });

      it("accepts the largest limit, 500", async () => {
        const userId = await newUser();
        const ids = await placeOrders(userId, 1);
        const { orders } = await sys().order.listOrdersByUser({ userId, limit: 500 });
        assert.deepEqual(
          orders.map((order) => order.orderId),
          ids,
        );
      });

      it("returns an empty list for a user without orders", async () => {
        const userId = await newUser();
        assert.deepEqual(await sys().order.listOrdersByUser({ userId, limit: 0 }), { orders: [] });
      });

      it("rejects limit 501 with INVALID_ARGUMENT on limit", async () => {
        const userId = await newUser();
        await expectCallError(sys().order.listOrdersByUser({ userId, limit: 501 }), {
          code: Code.INVALID_ARGUMENT,
          fields: ["limit"],
        });
      });

      it("rejects a negative limit with INVALID_ARGUMENT on limit", async () => {
        const userId = await newUser();
        await expectCallError(sys().order.listOrdersByUser({ userId, limit: -1 }), {
          code: Code.INVALID_ARGUMENT,
          fields: ["limit"],
        });
      });

      it("rejects an empty user_id and a bad limit together, listing both fields", async () => {
        await expectCallError(sys().order.listOrdersByUser({ userId: "", limit: 501 }), {
          code: Code.INVALID_ARGUMENT,
          fields: ["user_id", "limit"],
        });
      });

      it("answers NOT_FOUND for an unknown user", async () => {
        await expectCallError(sys().order.listOrdersByUser({ userId: newId("nobody"), limit: 0 }), {
          code: Code.NOT_FOUND,
          reason: "USER_NOT_FOUND",
        });
      });
    });
  });
}
