import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { StorageUnavailableError } from "./storage-unavailable.js";

/** The better-sqlite3 connection type, so callers need not import the driver. */
export type SqliteDatabase = Database.Database;

/** Options for openSqliteDatabase. */
export interface SqliteDatabaseOptions {
  /** How long a statement waits for another connection's lock before failing with SQLITE_BUSY. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
}

/** Opens (creating if needed) a SQLite file set up so an acknowledged write survives a crash. */
export function openSqliteDatabase(file: string, options: SqliteDatabaseOptions = {}): SqliteDatabase {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file);
  try {
    // WAL lets readers run alongside the writer; FULL fsyncs the WAL on every
    // commit, so a resolved write is on disk even after kill -9 or power loss.
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5_000)}`);
    db.pragma("foreign_keys = ON");
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * `error` as the stores throw it: a StorageUnavailableError (its cause kept)
 * when SQLite could not get a lock in time — SQLITE_BUSY, when another
 * connection (a worker process sharing the file, a backup) held it past the
 * busy timeout. That is transient: the same statement may succeed when
 * retried. Anything else is returned as it is.
 */
export function sqliteFailure(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as Error & { code?: unknown }).code;
  // SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, SQLITE_BUSY_RECOVERY…).
  if (typeof code !== "string" || !code.startsWith("SQLITE_BUSY")) return error;
  return new StorageUnavailableError(`SQLite is busy: ${error.message}`, { cause: error });
}
