import type { Migration } from "../../../storage/migrate.js";

/** UserService's schema, oldest first; ids are prefixed so they can share a ledger with OrderService's. */
export const USER_MIGRATIONS: readonly Migration[] = [
  {
    id: "user-0001-create-users",
    sqlite: `CREATE TABLE users (
      user_id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      email TEXT NOT NULL,
      created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )`,
    postgres: `CREATE TABLE users (
      user_id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      email TEXT NOT NULL,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`,
  },
];
