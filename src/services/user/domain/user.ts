import { checkId, rejectViolations, type Violation } from "../../common/domain-error.js";

/** A registered user. */
export interface User {
  readonly id: string;
  readonly name: string;
  readonly email: string;
}

// Deliberately loose: one @, no spaces, a dot in the domain. Real checks of an
// address need a round trip by mail, not a longer regex.
const PLAUSIBLE_EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Checks a new user's fields; throws an `invalid` DomainError listing every bad field. */
export function validateNewUser(user: User): User {
  const violations: Violation[] = [];
  const idProblem = checkId("user_id", user.id);
  if (idProblem) violations.push(idProblem);
  if (user.name.trim() === "") violations.push({ field: "name", description: "must not be empty" });
  else if (user.name.length > 200) violations.push({ field: "name", description: "must be at most 200 characters" });
  if (!PLAUSIBLE_EMAIL.test(user.email) || user.email.length > 254) {
    violations.push({ field: "email", description: "must be an address such as ada@example.com" });
  }
  rejectViolations(violations);
  return user;
}
