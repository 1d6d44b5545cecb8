import { SignalCancellation, type Cancellation } from "./cancellation.js";
import { type Metadata, textValue } from "./metadata.js";

/**
 * What a handler knows about the call it serves. A handler passes it on as
 * the `parent` of the outbound calls it makes, as Go code passes its ctx, so
 * deadline and cancellation reach downstream services. It is passed
 * explicitly rather than kept in AsyncLocalStorage: on Node 20 that turns on
 * async hooks for every promise and callback of the process, which cost a
 * fifth of the server's throughput (docs/benchmarks.md).
 */
export interface CallContext extends Cancellation {
  /** The method's HTTP/2 path, e.g. `/service.UserService/GetUser`. */
  readonly method: string;
  /** Absolute deadline in epoch milliseconds; undefined when the caller set none. */
  readonly deadline: number | undefined;
  /**
   * Aborts when the caller cancels, the deadline passes or the server shuts
   * down. Made on first use; code of our own listens with addAbortListener,
   * which needs no signal.
   */
  readonly signal: AbortSignal;
  /** The caller's request metadata. */
  readonly metadata: Metadata;
  /** The caller's address, e.g. `ipv4:127.0.0.1:51234`. */
  readonly peer: string;
  /**
   * Who the caller proved to be with a client certificate (mTLS): its URI SAN
   * (e.g. `spiffe://switchyard/order-service`), else its DNS SAN. Undefined
   * without a verified client certificate (plaintext, TLS without mTLS), and
   * for in-process calls unless the server enforces an access policy (then
   * they carry the calling service's identity, see toolkit/auth).
   */
  readonly peerIdentity?: string;
  /**
   * Who the caller proved to be with a credential sent in the call (e.g. a
   * verified bearer token), set by an authentication interceptor. Undefined
   * when the call carried none, or no such interceptor runs.
   */
  readonly principal?: Principal;
  /**
   * The W3C `traceparent` of the span this call is served in: the caller's,
   * as it arrived (engines read it from the request, unchecked: parse it with
   * parseTraceParent), unless the tracing interceptor records a span of its
   * own or starts a trace, and puts that one here. Outbound calls made with
   * this context as their parent continue its trace. Undefined when the
   * caller sent none and no tracing runs.
   */
  readonly traceParent?: string;
  /** The W3C `tracestate` that goes with traceParent. */
  readonly traceState?: string;
}

/** An authenticated caller, as an access policy sees it. */
export interface Principal {
  /** Who it is (a token's `sub`). */
  readonly subject: string;
  /** Who vouched for it (a token's `iss`), when known. */
  readonly issuer?: string;
  /** What it was granted, e.g. `users:read`. */
  readonly scopes: readonly string[];
  /** What it is, e.g. `admin`. */
  readonly roles: readonly string[];
}

/** Milliseconds left before the deadline (never negative); undefined without one. */
export function timeRemaining(context: CallContext, now = Date.now()): number | undefined {
  return context.deadline === undefined ? undefined : Math.max(0, context.deadline - now);
}

/**
 * A copy of `context` with `changes`, for interceptors that narrow or add to
 * it. The abort signal, the cancellation and the metadata are read from the
 * original when asked for (the metadata unless changed), so what an engine
 * makes on first use is still made only if someone reads it. Derive
 * contexts with this: an object spread would make them at once, and loses
 * them where they are class getters.
 */
export function deriveCallContext(context: CallContext, changes: CallContextChanges): CallContext {
  return new DerivedCallContext(context, changes);
}

/** What an interceptor may change in a context; its cancellation stays the original's. */
export type CallContextChanges = Partial<Omit<CallContext, "signal" | keyof Cancellation>>;

/**
 * A context of a call that no engine serves: a background job's, a command
 * line's, a test's. Cancelled by `signal`, when given.
 */
export function createCallContext(fields: {
  readonly method: string;
  readonly deadline?: number;
  readonly metadata?: Metadata;
  readonly peer?: string;
  readonly signal?: AbortSignal;
}): CallContext {
  return new StandaloneCallContext(fields.method, fields.deadline, fields.metadata ?? {}, fields.peer ?? "local", fields.signal ?? new AbortController().signal);
}

class StandaloneCallContext extends SignalCancellation implements CallContext {
  constructor(
    readonly method: string,
    readonly deadline: number | undefined,
    readonly metadata: Metadata,
    readonly peer: string,
    signal: AbortSignal,
  ) {
    super(signal);
  }

  get traceParent(): string | undefined {
    return textValue(this.metadata, "traceparent");
  }

  get traceState(): string | undefined {
    return textValue(this.metadata, "tracestate");
  }
}

/**
 * What every context made over another shares: its signal and cancellation
 * are the original's, so a derived call is given up with it.
 */
abstract class ContextOver {
  constructor(protected readonly base: CallContext) {}

  get signal(): AbortSignal {
    return this.base.signal;
  }

  get abortReason(): unknown {
    return this.base.abortReason;
  }

  addAbortListener(listener: () => void): void {
    this.base.addAbortListener(listener);
  }

  removeAbortListener(listener: () => void): void {
    this.base.removeAbortListener(listener);
  }
}

/**
 * A context that reads every member from `base`, for subclasses that
 * override a few with getters of their own (e.g. a value made only when read).
 */
export class ForwardingCallContext extends ContextOver implements CallContext {
  get method(): string {
    return this.base.method;
  }

  get deadline(): number | undefined {
    return this.base.deadline;
  }

  get metadata(): Metadata {
    return this.base.metadata;
  }

  get peer(): string {
    return this.base.peer;
  }

  get peerIdentity(): string | undefined {
    return this.base.peerIdentity;
  }

  get principal(): Principal | undefined {
    return this.base.principal;
  }

  get traceParent(): string | undefined {
    return this.base.traceParent;
  }

  get traceState(): string | undefined {
    return this.base.traceState;
  }
}

/**
 * Contexts are classes with getters on the prototype: V8 builds an object
 * literal with getters in about a microsecond, a class instance in a tenth
 * of that, and a call makes two or three contexts.
 */
class DerivedCallContext extends ContextOver implements CallContext {
  readonly method: string;
  readonly deadline: number | undefined;
  readonly peer: string;
  readonly peerIdentity: string | undefined;
  readonly principal: Principal | undefined;
  readonly traceParent: string | undefined;
  readonly traceState: string | undefined;

  constructor(
    base: CallContext,
    private readonly changes: CallContextChanges,
  ) {
    super(base);
    this.method = "method" in changes ? (changes.method as string) : base.method;
    this.deadline = "deadline" in changes ? changes.deadline : base.deadline;
    this.peer = "peer" in changes ? (changes.peer as string) : base.peer;
    this.peerIdentity = "peerIdentity" in changes ? changes.peerIdentity : base.peerIdentity;
    this.principal = "principal" in changes ? changes.principal : base.principal;
    this.traceParent = "traceParent" in changes ? changes.traceParent : base.traceParent;
    this.traceState = "traceState" in changes ? changes.traceState : base.traceState;
  }

  get metadata(): Metadata {
    return this.changes.metadata ?? this.base.metadata;
  }
}
