import type { CallContext } from "../rpc/call-context.js";
import { type MethodObserver, observeRefused } from "../rpc/call-observer.js";
import { SignalCancellation, type Cancellation } from "../rpc/cancellation.js";
import { asPromise } from "../rpc/as-promise.js";
import { ClientError } from "../rpc/client-error.js";
import { Code } from "../rpc/code.js";
import type { MethodDefinition, RequestOf, ResponseOf, ServiceDefinition } from "../rpc/definition.js";
import type { Metadata } from "../rpc/metadata.js";
import type { Transport, TransportCallOptions } from "./transport.js";

/** Options of one call. */
export interface CallOptions {
  /**
   * The inbound call this call is made for: the call inherits its deadline
   * (minus a margin) and its cancellation, and interceptors its trace. Pass
   * the handler's context, as Go code passes its ctx. Default: none, the
   * call stands alone.
   */
  readonly parent?: CallContext;
  /** Time allowed for this call; never extends the parent's deadline. Default: the parent's deadline, else `defaultTimeoutMs`. */
  readonly timeoutMs?: number;
  /** Cancels the call when aborted. */
  readonly signal?: AbortSignal;
  readonly metadata?: Metadata;
}

/** Options for createClient. */
export interface ClientOptions {
  /** Deadline of a call made with no parent deadline above it. Default 5000 ms. */
  readonly defaultTimeoutMs?: number;
  /**
   * Time kept back from the parent's deadline, so that the handler still has
   * time to answer its own caller after a downstream call times out. Default 20 ms.
   */
  readonly deadlineMarginMs?: number;
  /** Run around every call, first listed outermost (tracing, auth...). Default none. */
  readonly interceptors?: readonly ClientInterceptor[];
  /** Told of every call and the status it ended with, inside the interceptors (metrics). Default none. */
  readonly observer?: ClientCallObserver;
}

/** What a client tells of its calls, per method: see ClientOptions.observer. */
export interface ClientCallObserver {
  /** Once per method, as the client is made. */
  observe(service: ServiceDefinition, method: MethodDefinition<unknown, unknown>): MethodObserver;
}

/** What a client interceptor sees of one outbound call. */
export interface ClientCall {
  readonly service: ServiceDefinition;
  readonly method: MethodDefinition<unknown, unknown>;
  /** The method's HTTP/2 path, e.g. `/service.UserService/GetUser`. */
  readonly path: string;
  readonly request: unknown;
  /** The inbound call this one is made for, if any. */
  readonly parent: CallContext | undefined;
  /** Already resolved: the deadline includes the parent's, the cancellation the parent's. */
  readonly options: TransportCallOptions;
}

/**
 * `call` with other metadata, for interceptors that add to it (tracing,
 * bearer tokens). Built member by member rather than spread: every call then
 * has the same shape, which keeps V8's property reads of it fast.
 */
export function withMetadata(call: ClientCall, metadata: Metadata): ClientCall {
  const { options } = call;
  return {
    service: call.service,
    method: call.method,
    path: call.path,
    request: call.request,
    parent: call.parent,
    options: { deadline: options.deadline, cancellation: options.cancellation, metadata, observer: options.observer },
  };
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
 * Creates a typed client for `definition` over `transport`. A call made with
 * a handler's context as its `parent` inherits that call's deadline (minus a
 * margin) and its cancellation.
 *
 * @example
 *   const users = createClient(UserServiceDefinition, transport);
 *   // inside a handler (request, context) => …
 *   const user = await users.getUser({ userId }, { parent: context });
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
    (call) => {
      if (call.options.deadline <= Date.now()) {
        observeRefused(call.options.observer, Code.DEADLINE_EXCEEDED);
        return Promise.reject(new ClientError(call.path, Code.DEADLINE_EXCEEDED, `no time left to call ${call.path}: the deadline has passed`));
      }
      // A synchronous throw (say, metadata the transport cannot send) is a failure like any other.
      return asPromise(() => transport.unary(call.service, call.method, call.request, call.options));
    },
  );
  const client: Record<string, (request: unknown, callOptions?: CallOptions) => Promise<unknown>> = {};
  for (const [key, method] of Object.entries(definition.methods)) {
    const path = `/${definition.fullName}/${method.name}`;
    const observer = options.observer?.observe(definition, method);
    client[key] = (request, callOptions = {}) => {
      const parent = callOptions.parent;
      // The parent's budget governs; the default applies only to a call with
      // no deadline above it, and an explicit timeout can only shorten.
      const now = Date.now();
      let deadline = parent?.deadline !== undefined ? parent.deadline - marginMs : now + defaultTimeoutMs;
      if (callOptions.timeoutMs !== undefined) deadline = Math.min(deadline, now + callOptions.timeoutMs);
      const cancellation = cancellationOf(callOptions.signal, parent);
      return send({ service: definition, method, path, request, parent, options: { deadline, cancellation, metadata: callOptions.metadata, observer } });
    };
  }
  return client as Client<S>;
}

/** The parent itself when there is no signal of the call's own: listening on it makes no AbortSignal. */
function cancellationOf(signal: AbortSignal | undefined, parent: CallContext | undefined): Cancellation | undefined {
  if (signal === undefined) return parent;
  return new SignalCancellation(parent === undefined ? signal : AbortSignal.any([signal, parent.signal]));
}
