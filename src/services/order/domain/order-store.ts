import type { Order } from "./order.js";

/** Where orders are kept. Implementations: SQLite and PostgreSQL. */
export interface OrderStore {
  /**
   * Stores `order` unless an order with its id exists, atomically, and returns
   * what is stored under the id afterwards. Durable once the promise resolves.
   */
  insertIfAbsent(order: Order): Promise<Order>;
  /** The user's orders, most recently created first, at most `limit`. */
  listForUser(userId: string, limit: number): Promise<Order[]>;
}
