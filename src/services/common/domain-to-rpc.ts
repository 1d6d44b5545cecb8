import { Code } from "../../toolkit/rpc/code.js";
import { RpcError } from "../../toolkit/rpc/rpc-error.js";
import type { ServiceHandlers } from "../../toolkit/server/service-registration.js";
import type { ServiceDefinition } from "../../toolkit/rpc/definition.js";
import { DomainError, type DomainErrorKind } from "./domain-error.js";

const CODE_OF: Readonly<Record<DomainErrorKind, Code>> = {
  invalid: Code.INVALID_ARGUMENT,
  not_found: Code.NOT_FOUND,
  conflict: Code.ALREADY_EXISTS,
  precondition: Code.FAILED_PRECONDITION,
};

/** The status a caller sees for a domain failure; anything else passes through untouched. */
export function domainToRpc(error: unknown): unknown {
  if (!(error instanceof DomainError)) return error;
  return new RpcError(CODE_OF[error.kind], error.message, {
    reason: error.reason,
    metadata: error.facts,
    fieldViolations: error.violations,
  });
}

/** Wraps every handler of a service so domain failures leave as the right status code. */
export function mapDomainErrors<S extends ServiceDefinition>(handlers: ServiceHandlers<S>): ServiceHandlers<S> {
  const wrapped: Record<string, unknown> = {};
  for (const [key, handler] of Object.entries(handlers) as [string, (req: unknown, ctx: never) => Promise<unknown>][]) {
    wrapped[key] = (request: unknown, context: never) =>
      handler(request, context).catch((error: unknown) => {
        throw domainToRpc(error);
      });
  }
  return wrapped as ServiceHandlers<S>;
}
