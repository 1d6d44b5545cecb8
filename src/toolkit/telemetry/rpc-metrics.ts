import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { ClientInterceptor } from "../client/create-client.js";
import { Code } from "../rpc/code.js";
import { RpcError } from "../rpc/rpc-error.js";
import { toCallerError } from "../server/escaped-error.js";
import type { ServerInterceptor } from "../server/server-interceptor.js";

/** RED metrics of both sides of every call, as server and client interceptors. */
export interface RpcMetrics {
  readonly serverInterceptor: ServerInterceptor;
  readonly clientInterceptor: ClientInterceptor;
}

/**
 * The status code as go-grpc-prometheus writes it in `grpc_code` (grpc-go's
 * `codes.Code.String()`), so that existing dashboards and alerts match.
 */
export const GO_CODE_NAMES: Readonly<Record<Code, string>> = {
  [Code.OK]: "OK",
  [Code.CANCELLED]: "Canceled",
  [Code.UNKNOWN]: "Unknown",
  [Code.INVALID_ARGUMENT]: "InvalidArgument",
  [Code.DEADLINE_EXCEEDED]: "DeadlineExceeded",
  [Code.NOT_FOUND]: "NotFound",
  [Code.ALREADY_EXISTS]: "AlreadyExists",
  [Code.PERMISSION_DENIED]: "PermissionDenied",
  [Code.RESOURCE_EXHAUSTED]: "ResourceExhausted",
  [Code.FAILED_PRECONDITION]: "FailedPrecondition",
  [Code.ABORTED]: "Aborted",
  [Code.OUT_OF_RANGE]: "OutOfRange",
  [Code.UNIMPLEMENTED]: "Unimplemented",
  [Code.INTERNAL]: "Internal",
  [Code.UNAVAILABLE]: "Unavailable",
  [Code.DATA_LOSS]: "DataLoss",
  [Code.UNAUTHENTICATED]: "Unauthenticated",
};

type MethodLabel = "grpc_type" | "grpc_service" | "grpc_method";
type HandledLabel = MethodLabel | "grpc_code";
const METHOD_LABELS: MethodLabel[] = ["grpc_type", "grpc_service", "grpc_method"];
const HANDLED_LABELS: HandledLabel[] = [...METHOD_LABELS, "grpc_code"];

/** The metrics of one side (server or client), bound to one method's labels on first use. */
interface SideMetrics {
  started: Counter<MethodLabel>;
  handled: Counter<HandledLabel>;
  received: Counter<MethodLabel>;
  sent: Counter<MethodLabel>;
  seconds: Histogram<MethodLabel>;
  inFlight: Gauge<MethodLabel>;
}

interface MethodMetrics {
  started: Counter.Internal;
  received: Counter.Internal;
  sent: Counter.Internal;
  seconds: Histogram.Internal<MethodLabel>;
  inFlight: Gauge.Internal<MethodLabel>;
  handled: Map<Code, Counter.Internal>;
  labels: Record<MethodLabel, string>;
}

/** Help texts as in go-grpc-prometheus. */
const HELP = {
  server: {
    started: "Total number of RPCs started on the server.",
    handled: "Total number of RPCs completed on the server, regardless of success or failure.",
    received: "Total number of RPC stream messages received on the server.",
    sent: "Total number of gRPC stream messages sent by the server.",
    seconds: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    inFlight: "Number of RPCs being handled by the server right now.",
  },
  client: {
    started: "Total number of RPCs started on the client.",
    handled: "Total number of RPCs completed by the client, regardless of success or failure.",
    received: "Total number of RPC stream messages received by the client.",
    sent: "Total number of gRPC stream messages sent by the client.",
    seconds: "Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
    inFlight: "Number of RPCs sent by the client and not finished yet.",
  },
} as const;

function sideMetrics(registry: Registry, side: "server" | "client"): SideMetrics {
  const help = HELP[side];
  const registers = [registry];
  return {
    started: new Counter({ name: `grpc_${side}_started_total`, help: help.started, labelNames: METHOD_LABELS, registers }),
    handled: new Counter({ name: `grpc_${side}_handled_total`, help: help.handled, labelNames: HANDLED_LABELS, registers }),
    received: new Counter({ name: `grpc_${side}_msg_received_total`, help: help.received, labelNames: METHOD_LABELS, registers }),
    sent: new Counter({ name: `grpc_${side}_msg_sent_total`, help: help.sent, labelNames: METHOD_LABELS, registers }),
    // prom-client's default buckets are Prometheus's DefBuckets, as go-grpc-prometheus uses.
    seconds: new Histogram({ name: `grpc_${side}_handling_seconds`, help: help.seconds, labelNames: METHOD_LABELS, registers }),
    inFlight: new Gauge({ name: `grpc_${side}_in_flight_calls`, help: help.inFlight, labelNames: METHOD_LABELS, registers }),
  };
}

/** Binds each method's label values once, so that a call costs no label hashing. */
function methodCache(metrics: SideMetrics): (service: string, method: string) => MethodMetrics {
  const cache = new Map<string, MethodMetrics>();
  return (service, method) => {
    const key = `${service}/${method}`;
    let found = cache.get(key);
    if (found === undefined) {
      const labels: Record<MethodLabel, string> = { grpc_type: "unary", grpc_service: service, grpc_method: method };
      found = {
        started: metrics.started.labels(labels),
        received: metrics.received.labels(labels),
        sent: metrics.sent.labels(labels),
        seconds: metrics.seconds.labels(labels),
        inFlight: metrics.inFlight.labels(labels),
        handled: new Map(),
        labels,
      };
      cache.set(key, found);
    }
    return found;
  };
}

function handledCounter(metrics: SideMetrics, method: MethodMetrics, code: Code): Counter.Internal {
  let counter = method.handled.get(code);
  if (counter === undefined) {
    counter = metrics.handled.labels({ ...method.labels, grpc_code: GO_CODE_NAMES[code] ?? String(code) });
    method.handled.set(code, counter);
  }
  return counter;
}

/**
 * Registers go-grpc-prometheus's server and client metrics (`grpc_server_started_total`,
 * `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}`,
 * `grpc_server_handling_seconds`, `grpc_server_msg_received_total`,
 * `grpc_server_msg_sent_total` and the `grpc_client_` ones) plus in-flight
 * gauges, in `registry`, and returns the interceptors that keep them.
 */
export function createRpcMetrics(registry: Registry): RpcMetrics {
  const server = sideMetrics(registry, "server");
  const client = sideMetrics(registry, "client");
  const serverMethod = methodCache(server);
  const clientMethod = methodCache(client);

  return {
    serverInterceptor: (call, next) => {
      const method = serverMethod(call.service, call.method);
      const started = performance.now();
      method.started.inc();
      method.received.inc();
      method.inFlight.inc();
      const finish = (code: Code): void => {
        method.inFlight.dec();
        handledCounter(server, method, code).inc();
        method.seconds.observe((performance.now() - started) / 1000);
      };
      return next().then(
        (response) => {
          method.sent.inc();
          finish(Code.OK);
          return response;
        },
        (error: unknown) => {
          finish(toCallerError(error).code);
          throw error;
        },
      );
    },
    clientInterceptor: (call, next) => {
      const method = clientMethod(call.service.fullName, call.method.name);
      const started = performance.now();
      method.started.inc();
      method.sent.inc();
      method.inFlight.inc();
      const finish = (code: Code): void => {
        method.inFlight.dec();
        handledCounter(client, method, code).inc();
        method.seconds.observe((performance.now() - started) / 1000);
      };
      return next(call).then(
        (response) => {
          method.received.inc();
          finish(Code.OK);
          return response;
        },
        (error: unknown) => {
          finish(error instanceof RpcError ? error.code : Code.UNKNOWN);
          throw error;
        },
      );
    },
  };
}
