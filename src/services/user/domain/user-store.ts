import type { User } from "./user.js";

/** Where users are kept. Implementations: SQLite and PostgreSQL. */
export interface UserStore {
  /** The user with this id, or undefined. */
  find(id: string): Promise<User | undefined>;
  /**
   * Stores `user` unless a user with its id exists, atomically, and returns
   * what is stored under the id afterwards (the new user or the existing one).
   * Durable once the promise resolves.
   */
  insertIfAbsent(user: User): Promise<User>;
}
