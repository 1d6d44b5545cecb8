import { migrateSqlite } from "../../../storage/migrate.js";
import { type SqliteDatabase, sqliteFailure } from "../../../storage/sqlite-database.js";
import type { User } from "../domain/user.js";
import type { UserStore } from "../domain/user-store.js";
import { USER_MIGRATIONS } from "./user-migrations.js";

interface UserRow {
  user_id: string;
  name: string;
  email: string;
}

/** A UserStore in a SQLite file; migrates it first. The caller owns (and closes) `db`. */
export function openSqliteUserStore(db: SqliteDatabase): UserStore {
  migrateSqlite(db, USER_MIGRATIONS);
  const select = db.prepare<[string], UserRow>("SELECT user_id, name, email FROM users WHERE user_id = ?");
  const insert = db.prepare<[string, string, string]>(
    "INSERT INTO users (user_id, name, email) VALUES (?, ?, ?) ON CONFLICT (user_id) DO NOTHING",
  );

  function find(id: string): User | undefined {
    const row = select.get(id);
    return row === undefined ? undefined : toUser(row);
  }

  return {
    async find(id) {
      try {
        return find(id);
      } catch (error) {
        throw sqliteFailure(error);
      }
    },
    async insertIfAbsent(user) {
      try {
        // Read first: a replayed request then costs no write (and no fsync).
        const existing = find(user.id);
        if (existing !== undefined) return existing;
        insert.run(user.id, user.name, user.email);
        const stored = find(user.id);
        if (stored === undefined) throw new Error("user vanished right after insert");
        return stored;
      } catch (error) {
        throw sqliteFailure(error);
      }
    },
  };
}

function toUser(row: UserRow): User {
  return { id: row.user_id, name: row.name, email: row.email };
}
