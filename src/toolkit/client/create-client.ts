import { currentCallContext } from "../rpc/call-context.js";
import { ClientError } from "../rpc/client-error.js";
import { Code } from "../rpc/code.js";
import type { MethodDefinition, RequestOf, ResponseOf, ServiceDefinition } from "../rpc/definition.js";
import type { Metadata } from "../rpc/metadata.js";
import type { Transport, TransportCallOptions } from "./transport.js";

/** Options of one call. */
export interface CallOptions {
  /** Time allowed for this call; never extends an inbound deadline. Default: the inbound deadline, else `defaultTimeoutMs`. */
  readonly timeoutMs?: number;
  /** Cancels the call when aborted. */
  readonly signal?: AbortSignal;
  readonly metadata?: Metadata;
}

/** Options for createClient. */
export interface ClientOptions {
  /** Deadline of a call made with no inbound deadline above it. Default 5000 ms. */
  readonly defaultTimeoutMs?: number;
  /**
   * Time kept back from an inbound deadline, so that the handler still has
   * time to answer its own caller after a downstream call times out. Default 20 ms.
   */
  readonly deadlineMarginMs?: number;
  /** Run around every call, first listed outermost (tracing, metrics, auth...). Default none. */
  readonly interceptors?: readonly ClientInterceptor[];
}

/** What a client interceptor sees of one outbound call. */
export interface ClientCall {
  readonly service: ServiceDefinition;
  readonly method: MethodDefinition<unknown, unknown>;
  /** The method's HTTP/2 path, e.g. `/service.UserService/GetUser`. */
  readonly path: string;
  readonly request: unknown;
  /** Already resolved: the deadline includes the inbound call's, the signal its cancellation. */
  readonly options: TransportCallOptions;
}

/**
 * Wraps every outbound call. Calls `next` with the call (or a copy with, say,
 * more metadata) to go on, any number of times, and returns or throws
 * (a ClientError) what the caller should see.
 */
export type ClientInterceptor = (call: ClientCall, next: (call: ClientCall) => Promise<unknown>) => Promise<unknown>;

/** A typed client: one async function per method of the service. */
export type Client<S extends ServiceDefinition> = {
  readonly [K in keyof S["methods"]]: (
    request: RequestOf<S["methods"][K]>,
    options?: CallOptions,
  ) => Promise<ResponseOf<S["methods"][K]>>;
};

/**
 * Creates a typed client for `definition` over `transport`. Inside a handler,
 * each call inherits the inbound call's deadline (minus a margin) and its
 * cancellation, so nothing needs to be passed by hand.
 */
export function createClient<S extends ServiceDefinition>(
  definition: S,
  transport: Transport,
  options: ClientOptions = {},
): Client<S> {
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 5_000;
  const marginMs = options.deadlineMarginMs ?? 20;
  const send = (options.interceptors ?? []).reduceRight<(call: ClientCall) => Promise<unknown>>(
    (next, interceptor) => (call) => interceptor(call, next),
    (call) =>
      call.options.deadline <= Date.now()
        ? Promise.reject(
            new ClientError(call.path, Code.DEADLINE_EXCEEDED, `no time left to call ${call.path}: the deadline has passed`),
          )
        : transport.unary(call.service, call.method, call.request, call.options),
  );
  const client: Record<string, (request: unknown, callOptions?: CallOptions) => Promise<unknown>> = {};
  for (const [key, method] of Object.entries(definition.methods)) {
    const path = `/${definition.fullName}/${method.name}`;
    client[key] = (request, callOptions = {}) => {
      const inbound = currentCallContext();
      // The inbound caller's budget governs; the default applies only to a
      // call with no deadline above it, and an explicit timeout can only shorten.
      const now = Date.now();
      let deadline = inbound?.deadline !== undefined ? inbound.deadline - marginMs : now + defaultTimeoutMs;
      if (callOptions.timeoutMs !== undefined) deadline = Math.min(deadline, now + callOptions.timeoutMs);
      const signal = combineSignals(callOptions.signal, inbound?.signal);
      return send({ service: definition, method, path, request, options: { deadline, signal, metadata: callOptions.metadata } });
    };
  }
  return client as Client<S>;
}

function combineSignals(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return AbortSignal.any([a, b]);
}
