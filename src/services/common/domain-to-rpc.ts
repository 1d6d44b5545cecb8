import { Code } from "../../toolkit/rpc/code.js";
import { RpcError } from "../../toolkit/rpc/rpc-error.js";
import { DomainError, type DomainErrorKind } from "./domain-error.js";

const CODE_OF: Readonly<Record<DomainErrorKind, Code>> = {
  invalid: Code.INVALID_ARGUMENT,
  not_found: Code.NOT_FOUND,
  conflict: Code.ALREADY_EXISTS,
  precondition: Code.FAILED_PRECONDITION,
};

/**
 * The status a caller sees for a domain failure; anything else passes through
 * untouched. Services give it to defineService as their `mapError`.
 */
export function domainToRpc(error: unknown): unknown {
  if (!(error instanceof DomainError)) return error;
  return new RpcError(CODE_OF[error.kind], error.message, {
    reason: error.reason,
    metadata: error.facts,
    fieldViolations: error.violations,
  });
}
