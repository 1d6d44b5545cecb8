/** What went wrong, in domain terms; the transport edge maps it to a status code. */
export type DomainErrorKind = "invalid" | "not_found" | "conflict" | "precondition";

/** One invalid input field. */
export interface Violation {
  readonly field: string;
  readonly description: string;
}

/**
 * A failure the domain expects and can explain: a stable reason such as
 * `USER_NOT_FOUND`, a message a person can act on, and the invalid fields.
 * Domain code throws it; it knows nothing of gRPC.
 */
export class DomainError extends Error {
  override readonly name = "DomainError";

  constructor(
    readonly kind: DomainErrorKind,
    readonly reason: string,
    message: string,
    readonly violations: readonly Violation[] = [],
    readonly facts: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** Throws an `invalid` DomainError when any violation was found. */
export function rejectViolations(violations: readonly Violation[]): void {
  if (violations.length === 0) return;
  const summary = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  throw new DomainError("invalid", "INVALID_ARGUMENT", `invalid request: ${summary}`, violations);
}

/** A violation when an id is empty, too long or carries control characters. */
export function checkId(field: string, value: string): Violation | undefined {
  if (value.trim() === "") return { field, description: "must not be empty" };
  if (value.length > 128) return { field, description: "must be at most 128 characters" };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return { field, description: "must not contain control characters" };
  return undefined;
}
