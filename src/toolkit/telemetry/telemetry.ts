import type { CallAttemptObserver } from "../client/call-attempt-observer.js";
import type { ClientCallObserver, ClientInterceptor } from "../client/create-client.js";
import type { CallObserver } from "../server/dispatcher.js";
import type { ServerInterceptor } from "../server/server-interceptor.js";
import type { MetricsServer } from "./metrics-server.js";
import type { StoreMetrics } from "./store-metrics.js";
import type { Tracing, TracingOptions } from "./tracing.js";

/** Options for startTelemetry; with none set, it installs nothing at all. */
export interface TelemetryOptions {
  /** OTLP/HTTP endpoint for traces; no tracing without it (or `spanExporter`). */
  readonly otlpEndpoint?: string;
  /** Fraction of new traces recorded; a caller's decision is followed. Default 1. */
  readonly traceSampleRatio?: number;
  /** Exports spans here instead of OTLP. */
  readonly spanExporter?: TracingOptions["exporter"];
  /** `service.name` of the spans. Default `switchyard`. */
  readonly serviceName?: string;
  /** Serve Prometheus metrics at `/metrics` on this port (0 picks one); none when absent. */
  readonly metricsPort?: number;
  /** Interface of the metrics endpoint. Default `0.0.0.0`. */
  readonly metricsHost?: string;
  /**
   * In a worker of a cluster: collect metrics, and hand them to the primary
   * when it scrapes (it serves `/metrics` for all workers) instead of
   * serving them here. Default false.
   */
  readonly metricsViaClusterPrimary?: boolean;
}

/** Tracing and metrics of one server process, as interceptors to install. */
export interface Telemetry {
  /** Tracing's; empty without tracing. */
  readonly serverInterceptors: readonly ServerInterceptor[];
  /** The server's RPC metrics, for its dispatcher; undefined without metrics. */
  readonly serverObserver: CallObserver | undefined;
  /** Tracing's; empty without tracing. */
  readonly clientInterceptors: readonly ClientInterceptor[];
  /** The client RPC metrics, for createClient; undefined without metrics. */
  readonly clientObserver: ClientCallObserver | undefined;
  /** For grpc-js transports: a span per call attempt (retries, hedges). Undefined without tracing. */
  readonly attemptObserver: CallAttemptObserver | undefined;
  /** Times stores and reports their pools on the same endpoint; undefined without a metrics port. */
  readonly storeMetrics: StoreMetrics | undefined;
  /** The bound metrics port, when serving metrics. */
  readonly metricsPort: number | undefined;
  /** Where spans go, for the startup summary; undefined without tracing. */
  readonly tracing: string | undefined;
  /** Exports buffered spans, stops the metrics endpoint. */
  close(): Promise<void>;
}

/**
 * Starts what `options` asks for. Tracing and metrics each cost nothing when
 * off: their interceptors are not installed and their libraries not even
 * loaded (the OpenTelemetry SDK and exporter take a while to import).
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const serverInterceptors: ServerInterceptor[] = [];
  const clientInterceptors: ClientInterceptor[] = [];
  let tracing: Tracing | undefined;
  if (options.otlpEndpoint !== undefined || options.spanExporter !== undefined) {
    const { createTracing } = await import("./tracing.js");
    tracing = createTracing({
      ...(options.otlpEndpoint === undefined ? {} : { otlpEndpoint: options.otlpEndpoint }),
      ...(options.spanExporter === undefined ? {} : { exporter: options.spanExporter }),
      ...(options.traceSampleRatio === undefined ? {} : { sampleRatio: options.traceSampleRatio }),
      ...(options.serviceName === undefined ? {} : { serviceName: options.serviceName }),
    });
    serverInterceptors.push(tracing.serverInterceptor);
    clientInterceptors.push(tracing.clientInterceptor);
  }
  let storeMetrics: StoreMetrics | undefined;
  let serverObserver: CallObserver | undefined;
  let clientObserver: ClientCallObserver | undefined;
  let metricsServer: MetricsServer | undefined;
  let stopAnswering: (() => void) | undefined;
  if (options.metricsPort !== undefined || options.metricsViaClusterPrimary === true) {
    const [{ collectDefaultMetrics, Registry }, { createRpcMetrics }, { createStoreMetrics }, { startMetricsServer }, { answerClusterScrapes }] =
      await Promise.all([
        import("prom-client"),
        import("./rpc-metrics.js"),
        import("./store-metrics.js"),
        import("./metrics-server.js"),
        import("./cluster-metrics.js"),
      ]);
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const metrics = createRpcMetrics();
    const stores = createStoreMetrics();
    storeMetrics = stores;
    const collect = async (): Promise<string> => `${await registry.metrics()}\n${metrics.render()}\n${stores.render()}`;
    if (options.metricsPort === undefined) {
      stopAnswering = answerClusterScrapes(collect);
    } else {
      try {
        metricsServer = await startMetricsServer({
          collect,
          port: options.metricsPort,
          ...(options.metricsHost === undefined ? {} : { host: options.metricsHost }),
        });
      } catch (error) {
        await tracing?.shutdown();
        throw error;
      }
    }
    serverObserver = metrics.serverObserver;
    clientObserver = metrics.clientObserver;
  }
  return {
    serverInterceptors,
    serverObserver,
    clientInterceptors,
    clientObserver,
    attemptObserver: tracing?.attemptObserver,
    storeMetrics,
    metricsPort: metricsServer?.port,
    tracing: tracing?.describe,
    async close() {
      stopAnswering?.();
      await Promise.all([tracing?.shutdown(), metricsServer?.close()]);
    },
  };
}
