import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

/** The better-sqlite3 connection type, so callers need not import the driver. */
export type SqliteDatabase = Database.Database;

// How long a writer waits for another process's lock before failing with SQLITE_BUSY.
const BUSY_TIMEOUT_MS = 5_000;

/** Opens (creating if needed) a SQLite file set up so an acknowledged write survives a crash. */
export function openSqliteDatabase(file: string): SqliteDatabase {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file);
  try {
    // WAL lets readers run alongside the writer; FULL fsyncs the WAL on every
    // commit, so a resolved write is on disk even after kill -9 or power loss.
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma("foreign_keys = ON");
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}
