import { migratePostgres } from "../../../storage/migrate.js";
import { type PostgresPool, queryPostgres } from "../../../storage/postgres-pool.js";
import type { Order } from "../domain/order.js";
import type { OrderStore } from "../domain/order-store.js";
import { ORDER_MIGRATIONS } from "./order-migrations.js";

interface OrderRow {
  order_id: string;
  user_id: string;
  status: string;
  // pg returns BIGINT as a string, since it may exceed 2^53.
  created_at: string;
}

const COLUMNS = "order_id, user_id, status, created_at";

// Named statements are parsed once per connection, then reused.
const SELECT_ORDER = "switchyard_select_order";
const INSERT_ORDER = "switchyard_insert_order";
const LIST_ORDERS_FOR_USER = "switchyard_list_orders_for_user";

/** An OrderStore in PostgreSQL; migrates first. The caller owns (and ends) `pool`. */
export async function openPostgresOrderStore(pool: PostgresPool): Promise<OrderStore> {
  await migratePostgres(pool, ORDER_MIGRATIONS);

  const select = async (orderId: string): Promise<Order | undefined> => {
    const result = await queryPostgres<OrderRow>(pool, {
      name: SELECT_ORDER,
      text: `SELECT ${COLUMNS} FROM orders WHERE order_id = $1`,
      values: [orderId],
    });
    const row = result.rows[0];
    return row === undefined ? undefined : toOrder(row);
  };

  return {
    async insertIfAbsent(order) {
      // Read first: a replayed request then costs one read, not a write.
      const existing = await select(order.id);
      if (existing !== undefined) return existing;
      // Two statements, not one CTE: see postgres-user-store.ts.
      await queryPostgres(pool, {
        name: INSERT_ORDER,
        text: `INSERT INTO orders (${COLUMNS}) VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING`,
        values: [order.id, order.userId, order.status, order.createdAt],
      });
      const stored = await select(order.id);
      if (stored === undefined) throw new Error("order vanished right after insert");
      return stored;
    },
    async listForUser(userId, limit) {
      const result = await queryPostgres<OrderRow>(pool, {
        name: LIST_ORDERS_FOR_USER,
        text: `SELECT ${COLUMNS} FROM orders WHERE user_id = $1 ORDER BY seq DESC LIMIT $2`,
        values: [userId, limit],
      });
      return result.rows.map(toOrder);
    },
  };
}

function toOrder(row: OrderRow): Order {
  return { id: row.order_id, userId: row.user_id, status: row.status, createdAt: Number(row.created_at) };
}
