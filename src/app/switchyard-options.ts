import type { TokenVerifierFiles } from "../toolkit/auth/token-verifier.js";
import type { Logger } from "../toolkit/log/logger.js";
import type { ServerInterceptor } from "../toolkit/server/server-interceptor.js";
import type { ClientTlsOptions } from "../toolkit/tls/client-tls.js";
import type { ServerTlsOptions } from "../toolkit/tls/server-tls.js";
import type { Profile } from "./access-policy.js";

/** A service Switchyard can host. */
export type ServiceName = "user" | "order";

/**
 * Options for startSwitchyard; the CLI's flags map onto these one to one.
 * In a file of their own so that each wiring module reads them without
 * importing the composition root (switchyard.ts re-exports them).
 */
export interface SwitchyardOptions {
  /** Which services this process hosts. */
  readonly services: readonly ServiceName[];
  /** Host to bind. Default `0.0.0.0`. */
  readonly host?: string;
  /** Port to bind; 0 picks a free one. */
  readonly port: number;
  /** Directory of the SQLite files (used unless databaseUrl is set). */
  readonly dataDir: string;
  /** `postgres://…` to keep data in PostgreSQL instead of SQLite. */
  readonly databaseUrl?: string;
  /** Keep data in memory instead (lost at exit): tests, demos, benchmarks. Default false. */
  readonly memory?: boolean;
  /**
   * Where OrderService finds UserService (a gRPC target). Default: in
   * process, when this process hosts UserService too. Required when it does not.
   */
  readonly userServiceTarget?: string;
  /**
   * Hedges OrderService's GetUser calls to userServiceTarget: when one has
   * had no answer for this long, a copy goes to the next endpoint, the first
   * answer wins and the other copy is cancelled (gRFC A6 hedging, two copies
   * at most). It trades a little extra load for a shorter tail when a
   * replica stalls. Default: off.
   */
  readonly userServiceHedgingDelayMs?: number;
  /**
   * Whether OrderService's lean (http2) client carries its calls to
   * userServiceTarget through a call tunnel per connection
   * (proto/switchyard/tunnel/v1) where the server offers one: a message
   * each way per call instead of an HTTP/2 stream, the same semantics. The
   * grpc-js client has none. Default true.
   */
  readonly userServiceTunnel?: boolean;
  /** How long shutdown waits for in-flight calls. Default 10 s. */
  readonly drainTimeoutMs?: number;
  /** Extra server interceptors, run inside the built-in ones (e.g. auth, fault injection in tests). */
  readonly interceptors?: readonly ServerInterceptor[];
  /** Serve TLS; with `clientCaFile`, require client certificates (mTLS). Files are reloaded. Default: plaintext. */
  readonly tls?: ServerTlsOptions;
  /**
   * TLS of OrderService's channel to userServiceTarget: the CA to verify
   * UserService with, its expected name, and the certificate OrderService
   * presents. Default: plaintext.
   */
  readonly userServiceTls?: ClientTlsOptions;
  /** OTLP/HTTP endpoint (e.g. `http://localhost:4318`) to export traces to; no tracing without it. */
  readonly otlpEndpoint?: string;
  /** Fraction of new traces recorded; callers' sampled traces are always followed. Default 1. */
  readonly traceSampleRatio?: number;
  /** Serve Prometheus metrics at `/metrics` on this port (0 picks one; on `host`); none when absent. */
  readonly metricsPort?: number;
  /**
   * In a worker of `serve --workers`: collect metrics and hand them to the
   * cluster's primary, which serves them for all workers (metricsPort unset). Default false.
   */
  readonly clusterMetrics?: boolean;
  /**
   * Service registry, `etcd://host:port[,host:port…]`: each hosted service is
   * registered there (as `user-service`, `order-service`) under a lease, and
   * `etcd:///<name>` targets resolve through it. Default: none.
   */
  readonly registry?: string;
  /**
   * The address other hosts reach this process at, `host` or `host:port`
   * (the bound port when absent). Default: the bound host and port, with
   * `127.0.0.1` for a wildcard host.
   */
  readonly advertiseAddress?: string;
  /** TTL of the registry lease: how long a crashed process stays registered. Default 10 s. */
  readonly registryTtlSeconds?: number;
  /**
   * The gRPC implementation of the server and of OrderService's channel to
   * a remote UserService: `http2` (Switchyard's lean engine and client on
   * node:http2, about twice the throughput) or `grpc-js` (@grpc/grpc-js).
   * Same services, same semantics. Default `http2`.
   */
  readonly engine?: "grpc-js" | "http2";
  /** The implementation of OrderService's channel to a remote UserService alone. Default: `engine`. */
  readonly clientEngine?: "grpc-js" | "http2";
  /**
   * `production` refuses to start without TLS and bearer-token auth (with an
   * audience), and turns reflection off. Default `development`.
   */
  readonly profile?: Profile;
  /**
   * Verify callers' bearer tokens (JWT) with these keys and enforce the
   * access policy (src/app/access-policy.ts) on every call. Default: off,
   * every caller may call everything (local development).
   */
  readonly auth?: TokenVerifierFiles;
  /** Longest a call may run here; later inbound deadlines are shortened. Default 60 s. */
  readonly maxDeadlineMs?: number;
  /**
   * Calls this server works on at once, over all connections; beyond that a
   * call is answered at once with RESOURCE_EXHAUSTED (load shedding). Default 1000.
   */
  readonly maxConcurrentCalls?: number;
  /** Concurrent calls (HTTP/2 streams) per connection. Default 100. */
  readonly maxConcurrentStreams?: number;
  /** Largest request metadata (headers) accepted, in bytes. Default 16 KiB. */
  readonly maxMetadataBytes?: number;
  /** Where the server, certificate reloads, registration and store errors log. */
  readonly logger: Logger;
}
