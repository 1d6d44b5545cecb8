import {
  type Attributes,
  context as otelContext,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type SpanContext,
  type Tracer,
} from "@opentelemetry/api";
import { TraceState } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  AlwaysOnSampler,
  ParentBasedSampler,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { AttemptEnded, CallAttemptObserver } from "../client/call-attempt-observer.js";
import { type ClientCall, type ClientInterceptor, withMetadata } from "../client/create-client.js";
import { type CallContext, ForwardingCallContext } from "../rpc/call-context.js";
import { Code } from "../rpc/code.js";
import { whenSettled } from "../rpc/as-promise.js";
import { RpcError } from "../rpc/rpc-error.js";
import { formatTraceParent, parseTraceParent } from "../rpc/trace-parent.js";
import { toCallerError } from "../server/escaped-error.js";
import { type ServerInterceptor, withContext } from "../server/server-interceptor.js";
import { newTraceId, unsampledTraceParent } from "./trace-ids.js";

/** Options for createTracing. */
export interface TracingOptions {
  /**
   * OTLP/HTTP endpoint (protobuf encoding), e.g. `http://localhost:4318` as
   * for OTEL_EXPORTER_OTLP_ENDPOINT: spans go to `<endpoint>/v1/traces`
   * unless the URL already names that path.
   */
  readonly otlpEndpoint?: string;
  /** Where spans go instead of OTLP (e.g. an in-memory exporter in tests). */
  readonly exporter?: SpanExporter;
  /**
   * Fraction of new traces recorded, 0 to 1. A call that arrives with a
   * `traceparent` follows its caller's decision. Default 1.
   */
  readonly sampleRatio?: number;
  /** The `service.name` resource attribute. Default `switchyard`. */
  readonly serviceName?: string;
}

/** Tracing of one server process: its interceptors and its exporter pipeline. */
export interface Tracing {
  readonly tracer: Tracer;
  /** Starts a SERVER span per call, as a child of the caller's `traceparent`. */
  readonly serverInterceptor: ServerInterceptor;
  /** Starts a CLIENT span per outbound call and sends it on as `traceparent`. */
  readonly clientInterceptor: ClientInterceptor;
  /**
   * Give it to a grpc-js transport (`attemptObserver`): a CLIENT span per
   * attempt — first, retry or hedge — under the call's client span, sent on
   * as that attempt's `traceparent`, so the server span hangs under the attempt.
   */
  readonly attemptObserver: CallAttemptObserver;
  /** Where spans are exported, for the startup summary. */
  readonly describe: string;
  /** Exports what is buffered. */
  forceFlush(): Promise<void>;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

/** The OTLP/HTTP URL spans are posted to, from a base endpoint. */
export function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (!url.pathname.endsWith("/v1/traces")) url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/traces`;
  return url.toString();
}

/**
 * Sets up a tracer provider of its own (not the global one, so that two
 * servers in one process keep apart) exporting in batches. New traces are
 * recorded with probability `sampleRatio`, a caller's decision is followed
 * (the interceptors decide, see trace-ids.ts). The span a call is served in travels in its
 * CallContext (traceParent), not in an OpenTelemetry context manager: on
 * Node 20 the AsyncLocalStorage one turns on async hooks for every promise,
 * which alone would cost more than the whole tracing budget.
 */
export function createTracing(options: TracingOptions): Tracing {
  const ratio = options.sampleRatio ?? 1;
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`sampleRatio must be between 0 and 1, not ${ratio}`);
  let exporter = options.exporter;
  let describe = "custom exporter";
  if (exporter === undefined) {
    if (options.otlpEndpoint === undefined) throw new Error("createTracing needs an otlpEndpoint or an exporter");
    const url = tracesUrl(options.otlpEndpoint);
    exporter = new OTLPTraceExporter({ url });
    describe = `otlp ${url}`;
  }
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName ?? "switchyard" }),
    // The ratio is applied by the interceptors, which hand the SDK only the
    // calls to record (see trace-ids.ts): what reaches it is always kept.
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    // A collector that does not answer holds up shutdown by at most this long.
    spanProcessors: [new BatchSpanProcessor(exporter, { exportTimeoutMillis: 10_000 })],
  });
  const tracer = provider.getTracer("switchyard");
  const calls: ClientCallsInFlight = new Map();
  return {
    tracer,
    serverInterceptor: serverTracingInterceptor(tracer, ratio),
    clientInterceptor: clientTracingInterceptor(tracer, ratio, calls),
    attemptObserver: attemptTracingObserver(tracer, calls),
    describe: `${describe}, sampling ${ratio}`,
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

// W3C Trace Context is read and written with trace-parent.ts rather than
// OpenTelemetry's propagator: its regular expression and carrier objects
// cost more than the rest of a recorded call's tracing, and a header made
// here is then known without parsing when this process reads it back.

/** The `traceparent` of `span`. */
function traceParentOf(span: SpanContext): string {
  return formatTraceParent(span.traceId, span.spanId, (span.traceFlags & TraceFlags.SAMPLED) !== 0);
}

/** `base` with the remote span of `context`'s traceparent and tracestate (unchanged when the traceparent is invalid). */
function withRemoteParent(base: Context, context: CallContext): Context {
  const remote = parseTraceParent(context.traceParent);
  if (remote === undefined) return base;
  const state = context.traceState;
  return trace.setSpanContext(base, {
    traceId: remote.traceId,
    spanId: remote.spanId,
    traceFlags: remote.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
    ...(state === undefined ? {} : { traceState: new TraceState(state) }),
  });
}

/** Attributes of the OpenTelemetry RPC semantic conventions. */
function rpcAttributes(service: string, method: string): Record<string, string> {
  return { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method };
}

/** Server side, only codes that mean the server failed mark the span as an error. */
const SERVER_ERRORS: ReadonlySet<Code> = new Set([
  Code.UNKNOWN,
  Code.DEADLINE_EXCEEDED,
  Code.UNIMPLEMENTED,
  Code.INTERNAL,
  Code.UNAVAILABLE,
  Code.DATA_LOSS,
]);

function endSpan(span: Span, code: Code, message: string | undefined, isError: boolean): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (isError) span.setStatus({ code: SpanStatusCode.ERROR, message: `${Code[code]}: ${message ?? ""}` });
  span.end();
}

/**
 * A SERVER span per call, child of the caller's W3C `traceparent`, recorded
 * when the caller's trace is sampled, or for a new trace with probability
 * `ratio`. The handler's context carries the span (CallContext.traceParent),
 * so that its outbound calls and log lines join the trace; an unsampled one
 * is passed on as a header alone, without the SDK.
 */
export function serverTracingInterceptor(tracer: Tracer, ratio: number): ServerInterceptor {
  return (call, next) => {
    const caller = parseTraceParent(call.context.traceParent);
    if (!(caller?.sampled ?? Math.random() < ratio)) {
      // Not recorded: the caller's traceparent, which the context carries
      // already, goes on as it came (W3C lets a participant that records
      // nothing pass it through), or a new trace does.
      return caller === undefined ? next(withContext(call, new TraceContext(call.context, undefined, undefined))) : next();
    }
    const parent = caller === undefined ? otelContext.active() : withRemoteParent(otelContext.active(), call.context);
    const span = tracer.startSpan(
      `${call.service}/${call.method}`,
      { kind: SpanKind.SERVER, attributes: rpcAttributes(call.service, call.method) },
      parent,
    );
    const spanContext = span.spanContext();
    const context = new TraceContext(call.context, traceParentOf(spanContext), spanContext.traceState?.serialize());
    const result = next(withContext(call, context));
    whenSettled(
      result,
      () => {
        // A handler that ignored its signal and answered after its caller had
        // stopped waiting (deadline, cancellation): the span says what the caller
        // saw, an error by the same rule as a failed call (not for a cancellation).
        const gone = call.context.abortReason;
        if (gone instanceof RpcError) {
          endSpan(span, gone.code, `answered after the caller stopped waiting (${gone.message})`, SERVER_ERRORS.has(gone.code));
        } else {
          endSpan(span, Code.OK, undefined, false);
        }
      },
      (error) => {
        const callerError = toCallerError(error);
        endSpan(span, callerError.code, callerError.message, SERVER_ERRORS.has(callerError.code));
      },
    );
    return result;
  };
}

/**
 * The context of a call served in a span of this process: a recorded one, or
 * (`traceParent` undefined) the first of a new trace this process does not
 * record, whose `traceparent` is made when first read (by an outbound call
 * or a log line): most such calls never read it, and making ids costs more
 * than the rest of this interceptor. One class for both, so that the code
 * reading contexts sees one shape whichever calls are sampled.
 */
class TraceContext extends ForwardingCallContext {
  constructor(
    base: CallContext,
    private made: string | undefined,
    private readonly state: string | undefined,
  ) {
    super(base);
  }

  override get traceParent(): string {
    this.made ??= unsampledTraceParent(newTraceId());
    return this.made;
  }

  override get traceState(): string | undefined {
    return this.state;
  }
}

/**
 * The OpenTelemetry context of the span a call is served in, for spans a
 * handler makes of its own: `tracer.startSpan(name, {}, traceContextOf(context))`.
 * Without tracing it is the active context (the root one, unless the
 * embedding application installed a context manager).
 */
export function traceContextOf(context: CallContext | undefined): Context {
  if (context?.traceParent === undefined) return otelContext.active();
  return withRemoteParent(ROOT_CONTEXT, context);
}

/**
 * The recording client spans of calls in flight, by span id. An attempt is
 * seen deep inside grpc-js, where no async context of the call survives (a
 * retry starts from a timer); what it does carry is the call's `traceparent`,
 * and this is how its span id leads back to the call's span.
 */
export type ClientCallsInFlight = Map<string, { readonly span: Span; readonly name: string; readonly attributes: Attributes }>;

/**
 * A CLIENT span per outbound call, child of its parent call's span (or of the
 * active span when it has no parent; a new trace, recorded with probability
 * `ratio`, when there is none), sent on as `traceparent`. An unsampled trace
 * is passed on as a header alone. With `calls`, a recorded span is listed
 * there while the call is in flight, for attemptTracingObserver.
 */
export function clientTracingInterceptor(tracer: Tracer, ratio: number, calls?: ClientCallsInFlight): ClientInterceptor {
  return (call, next) => {
    const inherited = call.parent?.traceParent === undefined ? undefined : parseTraceParent(call.parent.traceParent);
    const active = inherited === undefined ? trace.getSpanContext(otelContext.active()) : undefined;
    const sampled = inherited?.sampled ?? (active === undefined ? Math.random() < ratio : (active.traceFlags & TraceFlags.SAMPLED) !== 0);
    if (!sampled) {
      const traceparent =
        inherited !== undefined ? (call.parent?.traceParent as string) : unsampledTraceParent(active?.traceId ?? newTraceId());
      return next(withTrace(call, traceparent, call.parent?.traceState));
    }
    const parent = traceContextOf(call.parent);
    const name = `${call.service.fullName}/${call.method.name}`;
    const attributes = rpcAttributes(call.service.fullName, call.method.name);
    const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
    const listedAs = calls !== undefined && span.isRecording() ? span.spanContext().spanId : undefined;
    if (listedAs !== undefined) calls?.set(listedAs, { span, name, attributes });
    const spanContext = span.spanContext();
    const result = next(withTrace(call, traceParentOf(spanContext), spanContext.traceState?.serialize()));
    whenSettled(
      result,
      () => {
        if (listedAs !== undefined) calls?.delete(listedAs);
        endSpan(span, Code.OK, undefined, false);
      },
      (error) => {
        if (listedAs !== undefined) calls?.delete(listedAs);
        const rpcError = error instanceof RpcError ? error : undefined;
        endSpan(span, rpcError?.code ?? Code.UNKNOWN, rpcError?.message ?? String(error), true);
      },
    );
    return result;
  };
}

/** `call` with the trace headers it passes on, added to its own metadata in one way whether it is recorded or not: one shape. */
function withTrace(call: ClientCall, traceparent: string, tracestate: string | undefined): ClientCall {
  const own = call.options.metadata;
  const metadata: Record<string, string | Uint8Array> = own === undefined ? { traceparent } : { ...own, traceparent };
  if (tracestate !== undefined) metadata["tracestate"] = tracestate;
  return withMetadata(call, metadata);
}

/** `network.peer.*` of an endpoint such as `10.0.0.7:50051` or `[::1]:50051`. */
function peerAttributes(endpoint: string | undefined): Attributes {
  const match = endpoint === undefined ? null : /^\[?([^\]]*?)\]?:(\d+)$/.exec(endpoint);
  if (match === null) return endpoint === undefined ? {} : { "network.peer.address": endpoint };
  return { "network.peer.address": match[1], "network.peer.port": Number(match[2]) };
}

/**
 * A CLIENT span per attempt of a call traced by clientTracingInterceptor
 * (with the same `calls`), as a child of the call's span: `<method> attempt`,
 * with `rpc.grpc.attempt` (1 for the first, from `grpc-previous-rpc-attempts`),
 * the endpoint as `network.peer.address`/`.port`, `switchyard.tunneled` when
 * it went through a call tunnel, and the attempt's status.
 * The attempt's `traceparent` is replaced by the attempt span's, so the
 * server span becomes its child. Calls not recorded (tracing off for them,
 * or not sampled) cost one header read and a map lookup, and are left alone.
 */
export function attemptTracingObserver(tracer: Tracer, calls: ClientCallsInFlight): CallAttemptObserver {
  return {
    attemptStarted(attempt): AttemptEnded | undefined {
      const traceparent = attempt.headers.get("traceparent");
      // 00-<32 hex trace id>-<16 hex span id>-<flags>
      const call = traceparent === undefined ? undefined : calls.get(traceparent.slice(36, 52));
      if (call === undefined || call.span.spanContext().traceId !== traceparent?.slice(3, 35)) return undefined;
      const span = tracer.startSpan(
        `${call.name} attempt`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            ...call.attributes,
            "rpc.grpc.attempt": attempt.number,
            ...peerAttributes(attempt.endpoint),
            ...(attempt.tunneled === true ? { "switchyard.tunneled": true } : {}),
          },
        },
        trace.setSpan(ROOT_CONTEXT, call.span),
      );
      const spanContext = span.spanContext();
      attempt.headers.set("traceparent", traceParentOf(spanContext));
      const state = spanContext.traceState?.serialize();
      if (state !== undefined) attempt.headers.set("tracestate", state);
      return (code, message) => endSpan(span, code, message, code !== Code.OK);
    },
  };
}
