import { Code, isCode } from "./code.js";

/** One invalid request field, reported to the caller as google.rpc.BadRequest. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** What an RpcError carries besides code and message. */
export interface RpcErrorOptions {
  /** Stable, machine-readable reason (google.rpc.ErrorInfo.reason), e.g. `USER_NOT_FOUND`. */
  readonly reason?: string;
  /** Extra facts for ErrorInfo.metadata: ids, never secrets. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Per-field problems (google.rpc.BadRequest). */
  readonly fieldViolations?: readonly FieldViolation[];
  /** The original failure: kept for logs, never sent over the wire. */
  readonly cause?: unknown;
}

/** The error domain named in every ErrorInfo we send. */
export const ERROR_DOMAIN = "switchyard.dev";

/**
 * The one error type of Switchyard's RPC layer: a gRPC status code, a message a
 * person can act on, and structured details. Servers throw it; clients receive
 * it (as its subclass ClientError).
 */
export class RpcError extends Error {
  override readonly name: string = "RpcError";
  readonly code: Code;
  readonly reason: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly fieldViolations: readonly FieldViolation[];

  constructor(code: Code, message: string, options: RpcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options.reason;
    this.metadata = options.metadata ?? {};
    this.fieldViolations = options.fieldViolations ?? [];
  }

  /**
   * Turns anything thrown into an RpcError. Unknown failures become INTERNAL
   * with a generic message; the original stays in `cause` for the server log.
   */
  static from(error: unknown): RpcError {
    if (error instanceof RpcError) return error;
    if (isAbortError(error)) return new RpcError(Code.CANCELLED, "the call was cancelled", { cause: error });
    return new RpcError(Code.INTERNAL, "internal error", { cause: error });
  }
}

/** Reports a request that failed validation, one violation per bad field. */
export function invalidArgument(violations: readonly FieldViolation[]): RpcError {
  const summary = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  return new RpcError(Code.INVALID_ARGUMENT, `invalid request: ${summary}`, {
    reason: "INVALID_ARGUMENT",
    fieldViolations: violations,
  });
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}

/** True for values shaped like an RpcError from another copy of this module. */
export function hasStatusCode(error: unknown): error is { code: Code; message: string } {
  return typeof error === "object" && error !== null && isCode((error as { code?: unknown }).code);
}
