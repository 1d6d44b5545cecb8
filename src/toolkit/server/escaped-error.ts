import { ClientError } from "../rpc/client-error.js";
import { Code } from "../rpc/code.js";
import { RpcError } from "../rpc/rpc-error.js";

/**
 * Decides what the caller sees for an error a handler threw. A handler's own
 * RpcError passes as is. A downstream error the handler did not translate
 * must not leak the dependency's status: it becomes what it means for this
 * caller (our deadline ran out, a dependency is unavailable, or our fault).
 * Anything else is INTERNAL with a generic message.
 */
export function toCallerError(error: unknown): RpcError {
  if (!(error instanceof ClientError)) return RpcError.from(error);
  const dependency = error.method.split("/")[1] ?? error.method;
  switch (error.code) {
    case Code.DEADLINE_EXCEEDED:
      return new RpcError(Code.DEADLINE_EXCEEDED, `deadline exceeded while waiting for ${dependency}`, {
        reason: "DEPENDENCY_DEADLINE_EXCEEDED",
        metadata: { dependency },
        cause: error,
      });
    case Code.CANCELLED:
      return new RpcError(Code.CANCELLED, "the call was cancelled", { cause: error });
    case Code.UNAVAILABLE:
    case Code.RESOURCE_EXHAUSTED:
      return new RpcError(Code.UNAVAILABLE, `${dependency} is unavailable; try again later`, {
        reason: "DEPENDENCY_UNAVAILABLE",
        metadata: { dependency },
        cause: error,
      });
    default:
      return new RpcError(Code.INTERNAL, "internal error", { cause: error });
  }
}

/** True for errors the server must log because the caller only sees a generic message. */
export function isUnexpected(error: RpcError): boolean {
  return error.code === Code.INTERNAL || error.code === Code.UNKNOWN || error.code === Code.DATA_LOSS;
}
