import { Code } from "../../toolkit/rpc/code.js";
import { RpcError } from "../../toolkit/rpc/rpc-error.js";
import { StorageUnavailableError } from "../../storage/storage-unavailable.js";
import { DomainError, type DomainErrorKind } from "./domain-error.js";

const CODE_OF: Readonly<Record<DomainErrorKind, Code>> = {
  invalid: Code.INVALID_ARGUMENT,
  not_found: Code.NOT_FOUND,
  conflict: Code.ALREADY_EXISTS,
  precondition: Code.FAILED_PRECONDITION,
};

/**
 * The status a caller sees for a domain failure, or for a store whose
 * database cannot serve it right now (UNAVAILABLE, which clients retry; the
 * cause stays on the server); anything else passes through untouched.
 * Services give it to defineService as their `mapError`.
 */
export function domainToRpc(error: unknown): unknown {
  if (error instanceof StorageUnavailableError) {
    return new RpcError(Code.UNAVAILABLE, "the database of this service is unavailable right now; retry later", {
      reason: "STORE_UNAVAILABLE",
      cause: error,
    });
  }
  if (!(error instanceof DomainError)) return error;
  return new RpcError(CODE_OF[error.kind], error.message, {
    reason: error.reason,
    metadata: error.facts,
    fieldViolations: error.violations,
  });
}
