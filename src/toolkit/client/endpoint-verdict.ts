import { Code } from "../rpc/code.js";

/**
 * What one finished call attempt says about the endpoint that served it:
 * it answered (`healthy`), it failed as an endpoint (`failed`), or nothing
 * (`ignored`: the caller gave up, so the attempt tells us nothing either way).
 */
export type EndpointVerdict = "healthy" | "failed" | "ignored";

/**
 * Statuses that say the endpoint itself is in trouble: it is unreachable or
 * refusing (UNAVAILABLE — draining, connection lost, or passing on a dead
 * dependency of its own), silent or too slow (DEADLINE_EXCEEDED — how a
 * host cut off the network shows, its TCP connection still looking open),
 * or broken inside (INTERNAL, UNKNOWN: an unexpected exception, a broken
 * store; DATA_LOSS).
 *
 * Deliberately not here:
 * - RESOURCE_EXHAUSTED. A server's load shedding answers it at once, so the
 *   refused call costs little and is already the overload protection;
 *   ejecting the replica would pour its share onto the others, which then
 *   shed in turn. The same code also means a caller's quota or a message too
 *   large (grpc-js's own limits), which say nothing about the endpoint.
 * - UNIMPLEMENTED. An endpoint that lacks one method (version skew during a
 *   rollout) still serves the others, and ejection is per endpoint, not per method.
 * - The application's answers (NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION,
 *   ALREADY_EXISTS, PERMISSION_DENIED, UNAUTHENTICATED, ABORTED, OUT_OF_RANGE):
 *   the endpoint did its job, so they count as healthy answers.
 */
const ENDPOINT_FAILURES: ReadonlySet<Code> = new Set([
  Code.UNAVAILABLE,
  Code.DEADLINE_EXCEEDED,
  Code.INTERNAL,
  Code.UNKNOWN,
  Code.DATA_LOSS,
]);

/**
 * Judges one finished attempt by its status, for endpoint ejection. A
 * CANCELLED attempt is ignored: the caller cancelled it, or hedging did once
 * another copy had answered, and neither is the endpoint's doing (but the
 * http2 client counts a copy that had the whole hedging delay and was beaten
 * as failed: EndpointPool.record).
 *
 * @example endpointVerdict(Code.NOT_FOUND) // "healthy": the endpoint answered
 */
export function endpointVerdict(code: Code): EndpointVerdict {
  if (code === Code.CANCELLED) return "ignored";
  return ENDPOINT_FAILURES.has(code) ? "failed" : "healthy";
}
