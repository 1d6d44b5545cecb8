import { Code } from "../rpc/code.js";
import { RpcError } from "../rpc/rpc-error.js";

/**
 * How long a call may run on a server that caps deadlines: a call without a
 * deadline, or with one later than `maxDeadlineMs` from now, gets
 * `maxDeadlineMs`. Both engines apply it where they read `grpc-timeout`, so a
 * capped call costs no more than one with a deadline of its own (one timer).
 * Returns the timeout to enforce and whether it is the cap.
 */
export function cappedTimeout(
  clientTimeoutMs: number | undefined,
  maxDeadlineMs: number | undefined,
): { readonly timeoutMs: number | undefined; readonly capped: boolean } {
  if (maxDeadlineMs === undefined || (clientTimeoutMs !== undefined && clientTimeoutMs <= maxDeadlineMs)) {
    return { timeoutMs: clientTimeoutMs, capped: false };
  }
  return { timeoutMs: maxDeadlineMs, capped: true };
}

/** Checks a configured cap once, at server creation. */
export function checkMaxDeadline(maxDeadlineMs: number | undefined): void {
  if (maxDeadlineMs !== undefined && !(maxDeadlineMs > 0)) {
    throw new Error(`the maximum deadline must be positive, not ${maxDeadlineMs}`);
  }
}

/** What the caller of a call stopped by the server's cap hears, and the handler's signal carries. */
export function maxDeadlineExceeded(maxDeadlineMs: number): RpcError {
  return new RpcError(
    Code.DEADLINE_EXCEEDED,
    `the call took longer than this server allows (${maxDeadlineMs} ms); use a shorter deadline or a smaller request`,
    { reason: "MAX_DEADLINE_EXCEEDED" },
  );
}
