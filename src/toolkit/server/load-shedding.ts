import { Code } from "../rpc/code.js";
import { RpcError } from "../rpc/rpc-error.js";
import type { ServerInterceptor } from "./server-interceptor.js";

/** A concurrency limit for one server, with the number of calls it holds now. */
export interface LoadShedding {
  readonly interceptor: ServerInterceptor;
  /** Calls being served (from the count it was given). */
  readonly inFlight: number;
  /** Calls refused so far. */
  readonly shed: number;
}

/**
 * Load shedding: admits at most `maxConcurrentCalls` calls at a time (over
 * every connection and service of the server) and answers any call beyond
 * that at once with RESOURCE_EXHAUSTED (reason `OVERLOADED`), instead of
 * queueing it without bound while every queued caller's deadline runs out.
 * RESOURCE_EXHAUSTED is not among the codes clients retry by default, so an
 * overloaded server is not sent the same call again at once; a caller that
 * is itself a server (OrderService) passes it on as UNAVAILABLE.
 *
 * `inFlight` reads the server's count of calls being served, the one being
 * admitted included: the dispatcher's (Dispatcher.inFlight), which counts on
 * the promise it makes for every call anyway, where counting here would add
 * one per call.
 */
export function loadShedding(maxConcurrentCalls: number, inFlight: () => number): LoadShedding {
  if (!Number.isInteger(maxConcurrentCalls) || maxConcurrentCalls < 1) {
    throw new Error(`the concurrent call limit must be a whole number of at least 1, not ${maxConcurrentCalls}`);
  }
  let shed = 0;
  const interceptor: ServerInterceptor = (_call, next) => {
    if (inFlight() <= maxConcurrentCalls) return next();
    shed++;
    return Promise.reject(
      new RpcError(
        Code.RESOURCE_EXHAUSTED,
        `the server is at its limit of ${maxConcurrentCalls} concurrent calls; retry later or on another instance`,
        { reason: "OVERLOADED", metadata: { max_concurrent_calls: String(maxConcurrentCalls) } },
      ),
    );
  };
  return {
    interceptor,
    get inFlight() {
      return inFlight();
    },
    get shed() {
      return shed;
    },
  };
}
