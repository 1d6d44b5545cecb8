import { checkId, DomainError, rejectViolations, type Violation } from "../../common/domain-error.js";
import { ORDER_CREATED, type Order } from "./order.js";
import type { OrderStore } from "./order-store.js";
import type { RequestScope, UserDirectory } from "./user-directory.js";

/** Default and largest page for listing orders. */
export const DEFAULT_ORDER_LIST_LIMIT = 50;
export const MAX_ORDER_LIST_LIMIT = 500;

/** What OrderService does, free of any transport; each use case runs within the request `scope` it serves. */
export interface OrderUseCases<Scope extends RequestScope> {
  /** Places an order; idempotent on its id. Writes nothing once `scope` is given up. */
  createOrder(input: { orderId: string; userId: string }, scope: Scope): Promise<Order>;
  /** The user's most recent order. */
  latestOrder(userId: string, scope: Scope): Promise<Order>;
  /** The user's orders, most recent first. `limit` 0 means the default. */
  listOrders(userId: string, limit: number, scope: Scope): Promise<Order[]>;
}

/** OrderService's use cases over a store and a view of UserService. */
export function createOrderUseCases<Scope extends RequestScope>(
  store: OrderStore,
  users: UserDirectory<Scope>,
  now: () => number = Date.now,
): OrderUseCases<Scope> {
  async function requireUser(userId: string, kind: "not_found" | "precondition", scope: Scope): Promise<void> {
    if ((await users.find(userId, scope)) === undefined) {
      throw new DomainError(kind, "USER_NOT_FOUND", `no user with id "${userId}"; create it with CreateUser first`, [], {
        user_id: userId,
      });
    }
  }

  return {
    async createOrder({ orderId, userId }, scope) {
      rejectViolations([checkId("order_id", orderId), checkId("user_id", userId)].filter(isViolation));
      await requireUser(userId, "precondition", scope);
      // The caller may have given up while we waited for UserService: write nothing then.
      if (scope.abortReason !== undefined) throw scope.abortReason;
      const stored = await store.insertIfAbsent({ id: orderId, userId, status: ORDER_CREATED, createdAt: now() });
      if (stored.userId !== userId) {
        throw new DomainError(
          "conflict",
          "ORDER_ID_TAKEN",
          `order "${orderId}" already belongs to another user; use a new order_id`,
          [],
          { order_id: orderId },
        );
      }
      return stored;
    },
    async latestOrder(userId, scope) {
      rejectViolations([checkId("user_id", userId)].filter(isViolation));
      await requireUser(userId, "not_found", scope);
      const [latest] = await store.listForUser(userId, 1);
      if (latest === undefined) {
        throw new DomainError("not_found", "NO_ORDERS", `user "${userId}" has no orders yet`, [], { user_id: userId });
      }
      return latest;
    },
    async listOrders(userId, limit, scope) {
      const violations = [checkId("user_id", userId)].filter(isViolation);
      if (!Number.isInteger(limit) || limit < 0 || limit > MAX_ORDER_LIST_LIMIT) {
        violations.push({ field: "limit", description: `must be between 0 and ${MAX_ORDER_LIST_LIMIT}` });
      }
      rejectViolations(violations);
      await requireUser(userId, "not_found", scope);
      return store.listForUser(userId, limit === 0 ? DEFAULT_ORDER_LIST_LIMIT : limit);
    },
  };
}

function isViolation(value: Violation | undefined): value is Violation {
  return value !== undefined;
}
