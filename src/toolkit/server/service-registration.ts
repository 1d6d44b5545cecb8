import type { CallContext } from "../rpc/call-context.js";
import type { RequestOf, ResponseOf, ServiceDefinition } from "../rpc/definition.js";

/** Serves one unary method: a typed request in, a typed response out. */
export type UnaryHandler<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

/** One handler per method of a service definition, checked by the compiler. */
export type ServiceHandlers<S extends ServiceDefinition> = {
  readonly [K in keyof S["methods"]]: UnaryHandler<RequestOf<S["methods"][K]>, ResponseOf<S["methods"][K]>>;
};

/** A service ready to be hosted by any server engine. */
export interface ServiceRegistration {
  readonly definition: ServiceDefinition;
  readonly handlers: Readonly<Record<string, UnaryHandler<unknown, unknown>>>;
  /**
   * Turns what a handler throws into what the server should answer (say, a
   * domain error into an RpcError); what it returns goes on as if thrown.
   * Default: unchanged.
   */
  readonly mapError?: (error: unknown) => unknown;
}

/** Options of defineService. */
export interface ServiceOptions {
  /** See ServiceRegistration.mapError. */
  readonly mapError?: (error: unknown) => unknown;
}

/**
 * Pairs a generated definition with its handlers. The type parameters vanish
 * here so that a server can hold services of different types in one list.
 */
export function defineService<S extends ServiceDefinition>(
  definition: S,
  handlers: ServiceHandlers<S>,
  options: ServiceOptions = {},
): ServiceRegistration {
  // Sound: every handler was checked against its method's types above, and the
  // server feeds each handler only requests decoded by that method's codec.
  const registration = { definition, handlers: handlers as unknown as ServiceRegistration["handlers"] };
  return options.mapError === undefined ? registration : { ...registration, mapError: options.mapError };
}
