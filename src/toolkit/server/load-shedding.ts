import { Code } from "../rpc/code.js";
import { asPromise } from "../rpc/as-promise.js";
import { RpcError } from "../rpc/rpc-error.js";
import type { ServerInterceptor } from "./server-interceptor.js";

/** A concurrency limit for one server, with the number of calls it holds now. */
export interface LoadShedding {
  readonly interceptor: ServerInterceptor;
  /** Calls admitted and not yet answered. */
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
 * A call counts until its answer is decided, whatever it is.
 */
export function loadShedding(maxConcurrentCalls: number): LoadShedding {
  if (!Number.isInteger(maxConcurrentCalls) || maxConcurrentCalls < 1) {
    throw new Error(`the concurrent call limit must be a whole number of at least 1, not ${maxConcurrentCalls}`);
  }
  let inFlight = 0;
  let shed = 0;
  const release = (): void => {
    inFlight--;
  };
  const interceptor: ServerInterceptor = (_call, next) => {
    if (inFlight >= maxConcurrentCalls) {
      shed++;
      return Promise.reject(
        new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `the server is at its limit of ${maxConcurrentCalls} concurrent calls; retry later or on another instance`,
          { reason: "OVERLOADED", metadata: { max_concurrent_calls: String(maxConcurrentCalls) } },
        ),
      );
    }
    inFlight++;
    const result = asPromise(next);
    // The caller gets `result` itself: one promise fewer per call than an async function.
    result.then(release, release);
    return result;
  };
  return {
    interceptor,
    get inFlight() {
      return inFlight;
    },
    get shed() {
      return shed;
    },
  };
}

/** The interceptor alone: see loadShedding. */
export function loadSheddingInterceptor(maxConcurrentCalls: number): ServerInterceptor {
  return loadShedding(maxConcurrentCalls).interceptor;
}
