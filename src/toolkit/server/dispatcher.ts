import type { CallContext } from "../rpc/call-context.js";
import type { MethodObserver } from "../rpc/call-observer.js";
import { Code } from "../rpc/code.js";
import type { MethodDefinition, ServiceDefinition } from "../rpc/definition.js";
import { applyAsPromise } from "../rpc/as-promise.js";
import { RpcError } from "../rpc/rpc-error.js";
import { type Logger, traceFieldsOf } from "../log/logger.js";
import { isUnexpected, toCallerError } from "./escaped-error.js";
import { chainInterceptors, type ServerCall, type ServerInterceptor } from "./server-interceptor.js";
import type { ServiceRegistration, UnaryHandler } from "./service-registration.js";

/** One servable method, found by its path. */
export interface Route {
  readonly service: ServiceDefinition;
  readonly method: MethodDefinition<unknown, unknown>;
}

/**
 * The transport-independent heart of a server: routes a decoded request to
 * its handler through the interceptors and
 * turns whatever is thrown into the status the caller should see. Network
 * engines and the in-process transport both call through it, so a call has
 * the same semantics whichever way it arrives.
 */
export interface Dispatcher {
  add(registration: ServiceRegistration): void;
  route(path: string): Route | undefined;
  readonly services: readonly ServiceRegistration[];
  /** Runs the call; rejects only with the RpcError to send to the caller. */
  invoke(route: Route, request: unknown, context: CallContext): Promise<unknown>;
  /**
   * `invoke` for a caller that only wants to be told how the call ended: no
   * promise of its own to chain on, so a call costs one promise and one
   * microtask turn fewer (the network engines' hot path).
   */
  serve(route: Route, request: unknown, context: CallContext, answer: CallAnswer): void;
  /** While true, new calls are refused with UNAVAILABLE. */
  draining: boolean;
  /** Calls invoked and not yet answered, over every route (load shedding reads it). */
  readonly inFlight: number;
}

/** What `Dispatcher.serve` tells of a call's end: exactly one of the two, once. */
export interface CallAnswer {
  succeed(response: unknown): void;
  /** With the RpcError to send to the caller. */
  fail(error: RpcError): void;
}

/** Told when each call starts and how it ends (the status its caller gets), around all the interceptors. */
export interface CallObserver {
  /** Once per route, as it is added: what to tell of its calls. */
  observe(route: Route): MethodObserver;
}

/** Options for createDispatcher. */
export interface DispatcherOptions {
  readonly logger: Logger;
  /** First listed is outermost. Default none. */
  readonly interceptors?: readonly ServerInterceptor[];
  /** Told of every call, outside the interceptors. Default none. */
  readonly observer?: CallObserver;
}

/** What the dispatcher keeps per route, built once. */
interface RouteChain {
  readonly chain: (call: ServerCall) => Promise<unknown>;
  readonly observer: MethodObserver | undefined;
  /** Settle an unobserved call of this route. */
  readonly answered: (response: unknown) => unknown;
  readonly failed: (error: unknown) => never;
}

/** Creates an empty dispatcher; services are added before the server starts. */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const interceptors = options.interceptors ?? [];
  const routes = new Map<string, Route>();
  // Each route's own interceptor chain, built once, ending in its handler:
  // a call needs no second lookup by name.
  const chains = new Map<Route, RouteChain>();
  const services: ServiceRegistration[] = [];

  // An unexpected failure is logged where the handler's own context is at
  // hand, so that the line carries the call's trace; one an interceptor
  // raised is logged on the way out. Never twice.
  const logged = new WeakSet<object>();
  const logUnexpected = (error: unknown, route: Route, context: CallContext | undefined): void => {
    const callerError = toCallerError(error);
    if (!isUnexpected(callerError) || (typeof error === "object" && error !== null && logged.has(error))) return;
    if (typeof error === "object" && error !== null) logged.add(error);
    options.logger.error(
      {
        err: callerError.cause ?? callerError,
        method: `${route.service.fullName}/${route.method.name}`,
        ...traceFieldsOf(context?.traceParent),
      },
      "call failed unexpectedly",
    );
  };
  // A handler failure its service answers UNAVAILABLE (its database is down,
  // say) is for the operator to see, with the cause the caller is not shown;
  // an outage fails every call, so at most one line a second per method.
  const lastWarned = new Map<Route, number>();
  const warnUnavailable = (error: unknown, route: Route, context: CallContext): void => {
    if (!(error instanceof RpcError) || error.code !== Code.UNAVAILABLE || error.cause === undefined) return;
    const now = Date.now();
    if (now - (lastWarned.get(route) ?? 0) < 1_000) return;
    lastWarned.set(route, now);
    options.logger.warn(
      { err: error.cause, method: `${route.service.fullName}/${route.method.name}`, ...traceFieldsOf(context.traceParent) },
      "call answered UNAVAILABLE: something the service needs is unavailable",
    );
  };
  // What the caller of a failed call hears, logged if unexpected.
  const callerErrorOf = (error: unknown, route: Route): RpcError => {
    logUnexpected(error, route, undefined);
    return toCallerError(error);
  };
  const fail = (error: unknown, route: Route): never => {
    throw callerErrorOf(error, route);
  };
  // The service's own error translation runs here, in the one catch every
  // call has anyway, rather than as a wrapper with a promise of its own.
  const runHandler = (
    route: Route,
    handler: UnaryHandler<unknown, unknown>,
    mapError: (error: unknown) => unknown,
    call: ServerCall,
  ): Promise<unknown> => {
    return applyAsPromise(handler, call.request, call.context).catch((thrown: unknown) => {
      const error = mapError(thrown);
      logUnexpected(error, route, call.context);
      warnUnavailable(error, route, call.context);
      throw error;
    });
  };
  let inFlight = 0;

  const dispatcher: Dispatcher = {
    draining: false,
    services,
    add(registration) {
      const { definition, handlers } = registration;
      const mapError = registration.mapError ?? unchanged;
      for (const [key, method] of Object.entries(definition.methods)) {
        const handler = handlers[key];
        if (handler === undefined) throw new Error(`${definition.fullName}: no handler for ${method.name}`);
        const route: Route = { service: definition, method };
        routes.set(`/${definition.fullName}/${method.name}`, route);
        chains.set(route, {
          chain: chainInterceptors(interceptors, (call) => runHandler(route, handler, mapError, call)),
          observer: options.observer?.observe(route),
          answered: (response) => {
            inFlight--;
            return response;
          },
          failed: (error) => {
            inFlight--;
            return fail(error, route);
          },
        });
      }
      services.push(registration);
    },
    route: (path) => routes.get(path),
    get inFlight() {
      return inFlight;
    },
    invoke(route, request, context) {
      const entry = chains.get(route);
      if (entry === undefined || dispatcher.draining) return Promise.reject(refusal(route));
      const { chain, observer } = entry;
      const call: ServerCall = { service: route.service.fullName, method: route.method.name, request, context };
      const started = observer === undefined ? 0 : observer.started();
      inFlight++;
      const result = applyAsPromise(chain, call, undefined);
      // Unobserved, a call needs nothing of its own to settle: the route's callbacks serve every call.
      if (observer === undefined) return result.then(entry.answered, entry.failed);
      return result.then(
        (response) => {
          observer.finished(started, Code.OK);
          return entry.answered(response);
        },
        (error: unknown) => {
          observer.finished(started, toCallerError(error).code);
          return entry.failed(error);
        },
      );
    },
    serve(route, request, context, answer) {
      const entry = chains.get(route);
      if (entry === undefined || dispatcher.draining) return answer.fail(refusal(route));
      const { chain, observer } = entry;
      const call: ServerCall = { service: route.service.fullName, method: route.method.name, request, context };
      const started = observer === undefined ? 0 : observer.started();
      inFlight++;
      applyAsPromise(chain, call, undefined).then(
        (response) => {
          inFlight--;
          observer?.finished(started, Code.OK);
          answer.succeed(response);
        },
        (error: unknown) => {
          inFlight--;
          const callerError = callerErrorOf(error, route);
          observer?.finished(started, callerError.code);
          answer.fail(callerError);
        },
      );
    },
  };
  // Why a call is not run: the server drains, or nothing serves the route.
  const refusal = (route: Route): RpcError =>
    dispatcher.draining
      ? new RpcError(Code.UNAVAILABLE, "the server is shutting down; retry on another instance")
      : new RpcError(Code.UNIMPLEMENTED, `${route.service.fullName}/${route.method.name} is not implemented here`);
  return dispatcher;
}

function unchanged(error: unknown): unknown {
  return error;
}
