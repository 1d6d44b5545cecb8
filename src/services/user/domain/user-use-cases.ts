import { checkId, DomainError, rejectViolations } from "../../common/domain-error.js";
import { type User, validateNewUser } from "./user.js";
import type { UserStore } from "./user-store.js";

/** What UserService does, free of any transport. */
export interface UserUseCases {
  getUser(id: string): Promise<User>;
  /** Registers a user; the same user again is a no-op, another user under the same id a conflict. */
  createUser(user: User): Promise<User>;
}

/** UserService's use cases over a store. */
export function createUserUseCases(store: UserStore): UserUseCases {
  return {
    async getUser(id) {
      const problem = checkId("user_id", id);
      if (problem !== undefined) rejectViolations([problem]);
      const user = await store.find(id);
      if (user === undefined) {
        throw new DomainError("not_found", "USER_NOT_FOUND", `no user with id "${id}"; create it with CreateUser first`, [], {
          user_id: id,
        });
      }
      return user;
    },
    async createUser(input) {
      const user = validateNewUser(input);
      const stored = await store.insertIfAbsent(user);
      if (stored.name !== user.name || stored.email !== user.email) {
        throw new DomainError(
          "conflict",
          "USER_ID_TAKEN",
          `a different user already has id "${user.id}"; choose another id`,
          [],
          { user_id: user.id },
        );
      }
      return stored;
    },
  };
}
