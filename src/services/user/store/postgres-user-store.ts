import { migratePostgres } from "../../../storage/migrate.js";
import { type PostgresPool, queryPostgres } from "../../../storage/postgres-pool.js";
import type { User } from "../domain/user.js";
import type { UserStore } from "../domain/user-store.js";
import { USER_MIGRATIONS } from "./user-migrations.js";

interface UserRow {
  user_id: string;
  name: string;
  email: string;
}

// Named statements are parsed once per connection, then reused.
const SELECT_USER = "switchyard_select_user";
const INSERT_USER = "switchyard_insert_user";

/** A UserStore in PostgreSQL; migrates first. The caller owns (and ends) `pool`. */
export async function openPostgresUserStore(pool: PostgresPool): Promise<UserStore> {
  await migratePostgres(pool, USER_MIGRATIONS);

  async function find(id: string): Promise<User | undefined> {
    const result = await queryPostgres<UserRow>(pool, {
      name: SELECT_USER,
      text: "SELECT user_id, name, email FROM users WHERE user_id = $1",
      values: [id],
    });
    const row = result.rows[0];
    return row === undefined ? undefined : toUser(row);
  }

  return {
    find,
    async insertIfAbsent(user) {
      // Read first: a replayed request then costs one read, not a write.
      const existing = await find(user.id);
      if (existing !== undefined) return existing;
      // Two statements, not one CTE: on conflict with a row committed after the
      // statement began, a CTE's snapshot would not see that row. A fresh
      // statement does (DO NOTHING waits for the other insert to commit).
      await queryPostgres(pool, {
        name: INSERT_USER,
        text: "INSERT INTO users (user_id, name, email) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
        values: [user.id, user.name, user.email],
      });
      const stored = await find(user.id);
      if (stored === undefined) throw new Error("user vanished right after insert");
      return stored;
    },
  };
}

function toUser(row: UserRow): User {
  return { id: row.user_id, name: row.name, email: row.email };
}
