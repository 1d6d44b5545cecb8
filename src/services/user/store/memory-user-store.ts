import type { User } from "../domain/user.js";
import type { UserStore } from "../domain/user-store.js";

/**
 * A UserStore in this process's memory: nothing survives a restart. For
 * tests, demos and the benchmark's in-memory data path; the same contract as
 * the SQL stores, so services cannot tell.
 */
export function createMemoryUserStore(): UserStore {
  const users = new Map<string, User>();
  return {
    async find(id) {
      return users.get(id);
    },
    async insertIfAbsent(user) {
      const existing = users.get(user.id);
      if (existing !== undefined) return existing;
      // A copy: later changes to the caller's object must not change what is stored.
      const stored = { ...user };
      users.set(user.id, stored);
      return stored;
    },
  };
}
