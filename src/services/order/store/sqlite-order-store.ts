import { migrateSqlite } from "../../../storage/migrate.js";
import { type SqliteDatabase, sqliteFailure } from "../../../storage/sqlite-database.js";
import type { Order } from "../domain/order.js";
import type { OrderStore } from "../domain/order-store.js";
import { ORDER_MIGRATIONS } from "./order-migrations.js";

interface OrderRow {
  order_id: string;
  user_id: string;
  status: string;
  created_at: number;
}

const COLUMNS = "order_id, user_id, status, created_at";

/** An OrderStore in a SQLite file; migrates it first. The caller owns (and closes) `db`. */
export function openSqliteOrderStore(db: SqliteDatabase): OrderStore {
  migrateSqlite(db, ORDER_MIGRATIONS);
  const select = db.prepare<[string], OrderRow>(`SELECT ${COLUMNS} FROM orders WHERE order_id = ?`);
  const insert = db.prepare<[string, string, string, number]>(
    `INSERT INTO orders (${COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`,
  );
  const listForUser = db.prepare<[string, number], OrderRow>(
    `SELECT ${COLUMNS} FROM orders WHERE user_id = ? ORDER BY seq DESC LIMIT ?`,
  );
  const latestForUser = db.prepare<[string], OrderRow>(`SELECT ${COLUMNS} FROM orders WHERE user_id = ? ORDER BY seq DESC LIMIT 1`);

  return {
    async insertIfAbsent(order) {
      try {
        // Read first: a replayed request then costs no write (and no fsync).
        const existing = select.get(order.id);
        if (existing !== undefined) return toOrder(existing);
        insert.run(order.id, order.userId, order.status, order.createdAt);
        const row = select.get(order.id);
        if (row === undefined) throw new Error("order vanished right after insert");
        return toOrder(row);
      } catch (error) {
        throw sqliteFailure(error);
      }
    },
    async listForUser(userId, limit) {
      try {
        // The latest order alone (GetOrderByUser's question) is read with get():
        // all() costs about three times as much per call for one row.
        if (limit === 1) {
          const row = latestForUser.get(userId);
          return row === undefined ? [] : [toOrder(row)];
        }
        return listForUser.all(userId, limit).map(toOrder);
      } catch (error) {
        throw sqliteFailure(error);
      }
    },
  };
}

function toOrder(row: OrderRow): Order {
  return { id: row.order_id, userId: row.user_id, status: row.status, createdAt: row.created_at };
}
