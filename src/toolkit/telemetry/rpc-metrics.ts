import type { ClientCallObserver } from "../client/create-client.js";
import type { MethodObserver } from "../rpc/call-observer.js";
import { Code } from "../rpc/code.js";
import type { CallObserver } from "../server/dispatcher.js";
import { escapeLabelValue } from "./prometheus-text.js";

/** RED metrics of both sides of every call: observers that count, and the text that reports. */
export interface RpcMetrics {
  /** For the server's dispatcher: counts every call it serves. */
  readonly serverObserver: CallObserver;
  /** For createClient: counts every call a client makes. */
  readonly clientObserver: ClientCallObserver;
  /** The families in the Prometheus text format (0.0.4), each ending in a newline. */
  render(): string;
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

/** Prometheus's DefBuckets, which go-grpc-prometheus's handling-time histograms use. */
export const HANDLING_SECONDS_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Everything counted for one method on one side. Plain numbers: a call costs no hashing. */
interface MethodStats {
  /** `grpc_type="unary",grpc_service="…",grpc_method="…"`, escaped once. */
  readonly labels: string;
  started: number;
  received: number;
  sent: number;
  inFlight: number;
  /** Finished calls by status code. */
  readonly handled: Float64Array;
  /** Non-cumulative counts per bucket of HANDLING_SECONDS_BUCKETS, then one for +Inf. */
  readonly buckets: Float64Array;
  seconds: number;
  count: number;
}

/** Help texts as in go-grpc-prometheus (the in-flight gauges are ours). */
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

/** The methods seen on one side, by service then method. */
class Side {
  private readonly services = new Map<string, Map<string, MethodStats>>();

  constructor(private readonly side: "server" | "client") {}

  stats(service: string, method: string): MethodStats {
    let methods = this.services.get(service);
    if (methods === undefined) {
      methods = new Map();
      this.services.set(service, methods);
    }
    let stats = methods.get(method);
    if (stats === undefined) {
      stats = {
        labels: `grpc_type="unary",grpc_service="${escapeLabelValue(service)}",grpc_method="${escapeLabelValue(method)}"`,
        started: 0,
        received: 0,
        sent: 0,
        inFlight: 0,
        handled: new Float64Array(17),
        buckets: new Float64Array(HANDLING_SECONDS_BUCKETS.length + 1),
        seconds: 0,
        count: 0,
      };
      methods.set(method, stats);
    }
    return stats;
  }

  render(): string {
    const all = [...this.services.values()].flatMap((methods) => [...methods.values()]);
    const name = (family: string): string => `grpc_${this.side}_${family}`;
    const help = HELP[this.side];
    const lines: string[] = [];
    const family = (metric: string, type: string, text: string, samples: (stats: MethodStats) => string[]): void => {
      lines.push(`# HELP ${metric} ${text}`, `# TYPE ${metric} ${type}`);
      for (const stats of all) lines.push(...samples(stats));
      lines.push("");
    };
    family(name("started_total"), "counter", help.started, (s) => [`${name("started_total")}{${s.labels}} ${s.started}`]);
    family(name("handled_total"), "counter", help.handled, (s) =>
      [...s.handled.entries()]
        .filter(([, count]) => count > 0)
        .map(([code, count]) => `${name("handled_total")}{${s.labels},grpc_code="${GO_CODE_NAMES[code as Code]}"} ${count}`),
    );
    family(name("msg_received_total"), "counter", help.received, (s) => [`${name("msg_received_total")}{${s.labels}} ${s.received}`]);
    family(name("msg_sent_total"), "counter", help.sent, (s) => [`${name("msg_sent_total")}{${s.labels}} ${s.sent}`]);
    family(name("handling_seconds"), "histogram", help.seconds, (s) => {
      const samples: string[] = [];
      let cumulative = 0;
      HANDLING_SECONDS_BUCKETS.forEach((bound, i) => {
        cumulative += s.buckets[i] ?? 0;
        samples.push(`${name("handling_seconds_bucket")}{${s.labels},le="${bound}"} ${cumulative}`);
      });
      samples.push(
        `${name("handling_seconds_bucket")}{${s.labels},le="+Inf"} ${s.count}`,
        `${name("handling_seconds_sum")}{${s.labels}} ${s.seconds}`,
        `${name("handling_seconds_count")}{${s.labels}} ${s.count}`,
      );
      return samples;
    });
    family(name("in_flight_calls"), "gauge", help.inFlight, (s) => [`${name("in_flight_calls")}{${s.labels}} ${s.inFlight}`]);
    return lines.join("\n");
  }
}

function finish(stats: MethodStats, code: Code, started: number): void {
  const seconds = (performance.now() - started) / 1000;
  stats.inFlight -= 1;
  stats.handled[code] = (stats.handled[code] ?? 0) + 1;
  let bucket = 0;
  while (bucket < HANDLING_SECONDS_BUCKETS.length && seconds > (HANDLING_SECONDS_BUCKETS[bucket] ?? Infinity)) bucket++;
  stats.buckets[bucket] = (stats.buckets[bucket] ?? 0) + 1;
  stats.seconds += seconds;
  stats.count += 1;
}

/**
 * Counts one method's unary calls on one side: its one request as the call
 * starts (received by a server, sent by a client), its one response when it
 * ends OK (sent by a server, received by a client).
 */
function methodObserver(stats: MethodStats, side: "server" | "client"): MethodObserver {
  const request = side === "server" ? "received" : "sent";
  const response = side === "server" ? "sent" : "received";
  return {
    started() {
      stats.started += 1;
      stats[request] += 1;
      stats.inFlight += 1;
      return performance.now();
    },
    finished(started, code) {
      if (code === Code.OK) stats[response] += 1;
      finish(stats, code, started);
    },
  };
}

/**
 * go-grpc-prometheus's server and client metrics (`grpc_server_started_total`,
 * `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}`,
 * `grpc_server_handling_seconds`, `grpc_server_msg_received_total`,
 * `grpc_server_msg_sent_total` and the `grpc_client_` ones) plus in-flight
 * gauges. Calls update plain numbers; the text is built only when scraped.
 */
export function createRpcMetrics(): RpcMetrics {
  const server = new Side("server");
  const client = new Side("client");
  return {
    serverObserver: {
      observe: (route) => methodObserver(server.stats(route.service.fullName, route.method.name), "server"),
    },
    clientObserver: {
      observe: (service, method) => methodObserver(client.stats(service.fullName, method.name), "client"),
    },
    render: () => `${server.render()}\n${client.render()}`,
  };
}
