import type { Order } from "../domain/order.js";
import type { OrderStore } from "../domain/order-store.js";

/**
 * An OrderStore in this process's memory: nothing survives a restart. For
 * tests, demos and the benchmark's in-memory data path; the same contract as
 * the SQL stores (a user's orders come back newest first, as stored).
 */
export function createMemoryOrderStore(): OrderStore {
  const orders = new Map<string, Order>();
  /** Each user's orders in the order they were stored. */
  const byUser = new Map<string, Order[]>();
  return {
    async insertIfAbsent(order) {
      const existing = orders.get(order.id);
      if (existing !== undefined) return existing;
      const stored = { ...order };
      orders.set(order.id, stored);
      let list = byUser.get(order.userId);
      if (list === undefined) byUser.set(order.userId, (list = []));
      list.push(stored);
      return stored;
    },
    async listForUser(userId, limit) {
      const list = byUser.get(userId) ?? [];
      const newest: Order[] = [];
      for (let i = list.length - 1; i >= 0 && newest.length < limit; i--) newest.push(list[i] as Order);
      return newest;
    },
  };
}
