// Hand-written on purpose: the whole schema is two tables, and this runner is
// about fifty lines. A migration library would be bigger than the schema and
// would bring its own CLI, config and file layout.
import type { PostgresPool } from "./postgres-pool.js";
import type { SqliteDatabase } from "./sqlite-database.js";

/** One schema change, written for each database; `id` is recorded once applied and must never change. */
export interface Migration {
  readonly id: string;
  readonly sqlite: string;
  readonly postgres: string;
}

// Any fixed number works; it only has to be the same in every process.
const POSTGRES_MIGRATION_LOCK = 7_120_385_114;

const CREATE_SQLITE_LEDGER = `CREATE TABLE IF NOT EXISTS schema_migrations (
  id TEXT PRIMARY KEY,
  applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`;

const CREATE_POSTGRES_LEDGER = `CREATE TABLE IF NOT EXISTS schema_migrations (
  id TEXT PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`;

/** Applies the migrations `db` has not seen yet, in order, each in its own transaction. */
export function migrateSqlite(db: SqliteDatabase, migrations: readonly Migration[]): void {
  db.exec(CREATE_SQLITE_LEDGER);
  const isApplied = db.prepare<[string], { id: string }>("SELECT id FROM schema_migrations WHERE id = ?");
  for (const migration of migrations) {
    // BEGIN IMMEDIATE takes the write lock before the check, so two processes
    // opening the same file cannot both decide to apply the same migration.
    db.prepare("BEGIN IMMEDIATE").run();
    try {
      if (isApplied.get(migration.id) === undefined) {
        db.exec(migration.sqlite);
        db.prepare("INSERT INTO schema_migrations (id) VALUES (?)").run(migration.id);
      }
      db.prepare("COMMIT").run();
    } catch (error) {
      if (db.inTransaction) db.prepare("ROLLBACK").run();
      throw error;
    }
  }
}

/** Applies the migrations the database has not seen yet, in order, each in its own transaction. */
export async function migratePostgres(pool: PostgresPool, migrations: readonly Migration[]): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    for (const migration of migrations) {
      await client.query("BEGIN");
      try {
        // Held until COMMIT: processes starting together take turns, and the
        // later ones see the ledger row and skip.
        await client.query("SELECT pg_advisory_xact_lock($1)", [POSTGRES_MIGRATION_LOCK]);
        await client.query(CREATE_POSTGRES_LEDGER);
        const applied = await client.query("SELECT id FROM schema_migrations WHERE id = $1", [migration.id]);
        if (applied.rowCount === 0) {
          await client.query(migration.postgres);
          await client.query("INSERT INTO schema_migrations (id) VALUES ($1)", [migration.id]);
        }
        await client.query("COMMIT");
      } catch (error) {
        // A failed ROLLBACK means the connection is unusable: discard it below.
        await client.query("ROLLBACK").catch((rollbackError: Error) => (broken = rollbackError));
        throw error;
      }
    }
  } finally {
    client.release(broken);
  }
}
