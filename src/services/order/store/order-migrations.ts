import type { Migration } from "../../../storage/migrate.js";

// No foreign key to users: OrderService may run against its own database.
// "Most recent" is the highest seq, not created_at, because clocks can step back.

/** OrderService's schema, oldest first; ids are prefixed so they can share a ledger with UserService's. */
export const ORDER_MIGRATIONS: readonly Migration[] = [
  {
    id: "order-0001-create-orders",
    sqlite: `CREATE TABLE orders (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      order_id TEXT NOT NULL UNIQUE,
      user_id TEXT NOT NULL,
      status TEXT NOT NULL,
      created_at BIGINT NOT NULL
    );
    CREATE INDEX orders_by_user_recent ON orders (user_id, seq DESC);`,
    postgres: `CREATE TABLE orders (
      seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      order_id TEXT NOT NULL UNIQUE,
      user_id TEXT NOT NULL,
      status TEXT NOT NULL,
      created_at BIGINT NOT NULL
    );
    CREATE INDEX orders_by_user_recent ON orders (user_id, seq DESC);`,
  },
];
