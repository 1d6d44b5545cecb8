import {
  context as otelContext,
  type Context,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { ClientInterceptor } from "../client/create-client.js";
import { Code } from "../rpc/code.js";
import type { Metadata } from "../rpc/metadata.js";
import { RpcError } from "../rpc/rpc-error.js";
import { toCallerError } from "../server/escaped-error.js";
import type { ServerInterceptor } from "../server/server-interceptor.js";

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
 * servers in one process keep apart) exporting in batches, sampled
 * ParentBased(TraceIdRatio). The global context manager is set once per
 * process to one based on AsyncLocalStorage, so the span a server interceptor
 * makes active is still active in the handler's awaits and its outbound calls.
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
  installContextManager();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName ?? "switchyard" }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
    // A collector that does not answer holds up shutdown by at most this long.
    spanProcessors: [new BatchSpanProcessor(exporter, { exportTimeoutMillis: 10_000 })],
  });
  const tracer = provider.getTracer("switchyard");
  return {
    tracer,
    serverInterceptor: serverTracingInterceptor(tracer),
    clientInterceptor: clientTracingInterceptor(tracer),
    describe: `${describe}, sampling ${ratio}`,
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

let contextManagerInstalled = false;

/**
 * Makes OpenTelemetry's active context follow async flows. If the embedding
 * application registered a context manager first, that one stays.
 */
export function installContextManager(): void {
  if (contextManagerInstalled) return;
  contextManagerInstalled = true;
  otelContext.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

const propagator = new W3CTraceContextPropagator();

const metadataGetter: TextMapGetter<Metadata> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === "string" ? value : undefined;
  },
};

const metadataSetter: TextMapSetter<Record<string, string | Uint8Array>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

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

/** A SERVER span per call, child of the caller's W3C `traceparent`, active while the handler runs. */
export function serverTracingInterceptor(tracer: Tracer): ServerInterceptor {
  return (call, next) => {
    const parent = propagator.extract(otelContext.active(), call.context.metadata, metadataGetter);
    const span = tracer.startSpan(
      `${call.service}/${call.method}`,
      { kind: SpanKind.SERVER, attributes: rpcAttributes(call.service, call.method) },
      parent,
    );
    return otelContext.with(trace.setSpan(parent, span), () =>
      next().then(
        (response) => {
          endSpan(span, Code.OK, undefined, false);
          return response;
        },
        (error: unknown) => {
          const callerError = toCallerError(error);
          endSpan(span, callerError.code, callerError.message, SERVER_ERRORS.has(callerError.code));
          throw error;
        },
      ),
    );
  };
}

/** A CLIENT span per outbound call, child of the active span, sent on as `traceparent`. */
export function clientTracingInterceptor(tracer: Tracer): ClientInterceptor {
  return (call, next) => {
    const parent: Context = otelContext.active();
    const span = tracer.startSpan(
      `${call.service.fullName}/${call.method.name}`,
      { kind: SpanKind.CLIENT, attributes: rpcAttributes(call.service.fullName, call.method.name) },
      parent,
    );
    const active = trace.setSpan(parent, span);
    const metadata: Record<string, string | Uint8Array> = { ...call.options.metadata };
    propagator.inject(active, metadata, metadataSetter);
    return otelContext.with(active, () => next({ ...call, options: { ...call.options, metadata } })).then(
      (response) => {
        endSpan(span, Code.OK, undefined, false);
        return response;
      },
      (error: unknown) => {
        const rpcError = error instanceof RpcError ? error : undefined;
        endSpan(span, rpcError?.code ?? Code.UNKNOWN, rpcError?.message ?? String(error), true);
        throw error;
      },
    );
  };
}
