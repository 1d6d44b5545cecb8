import { isIPv6 } from "node:net";
import { UserServiceDefinition } from "../gen/service/v1/service.js";
import { createClient } from "../toolkit/client/create-client.js";
import { createGrpcTransport } from "../toolkit/client/grpc-js-transport.js";
import { createInProcessTransport } from "../toolkit/client/in-process-transport.js";
import type { Transport } from "../toolkit/client/transport.js";
import { authInterceptor } from "../toolkit/auth/auth-interceptor.js";
import { asInProcessCaller } from "../toolkit/auth/in-process-caller.js";
import { loadTokenVerifier, type TokenVerifier, type TokenVerifierFiles } from "../toolkit/auth/token-verifier.js";
import type { Registration } from "../toolkit/discovery/discovery.js";
import { etcdChannelOptions } from "../toolkit/discovery/etcd-discovery.js";
import { parseEtcdUrl } from "../toolkit/discovery/etcd-client.js";
import { registerInstance } from "../toolkit/discovery/etcd-registration.js";
import type { Logger } from "../toolkit/log/logger.js";
import { createRpcServer } from "../toolkit/server/grpc-js-server.js";
import { createHttp2RpcServer } from "../toolkit/server/http2/http2-server.js";
import { loadSheddingInterceptor } from "../toolkit/server/load-shedding.js";
import { loggingInterceptor } from "../toolkit/server/logging-interceptor.js";
import type { ServerInterceptor } from "../toolkit/server/server-interceptor.js";
import { startTelemetry, type Telemetry } from "../toolkit/telemetry/telemetry.js";
import { loadClientTls, type ClientTls, type ClientTlsOptions } from "../toolkit/tls/client-tls.js";
import { loadServerTls, type ServerTls, type ServerTlsOptions } from "../toolkit/tls/server-tls.js";
import { createOrderUseCases } from "../services/order/domain/order-use-cases.js";
import { createUserServiceDirectory } from "../services/order/transport/user-service-directory.js";
import { orderServiceHandlers } from "../services/order/transport/order-service-handlers.js";
import { createUserUseCases } from "../services/user/domain/user-use-cases.js";
import { userServiceHandlers } from "../services/user/transport/user-service-handlers.js";
import { ORDER_SERVICE_IDENTITY, type Profile, switchyardAccessPolicy } from "./access-policy.js";
import { instrumentStores } from "./instrument-stores.js";
import { openStores } from "./open-stores.js";

/** A service Switchyard can host. */
export type ServiceName = "user" | "order";

/** Options for startSwitchyard; the CLI's flags map onto these one to one. */
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
   * The gRPC server implementation: `http2` (Switchyard's lean engine on
   * node:http2, about twice the throughput) or `grpc-js` (@grpc/grpc-js).
   * Same services, same semantics. Default `http2`.
   */
  readonly engine?: "grpc-js" | "http2";
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
  /** Concurrent calls (HTTP/2 streams) per connection, grpc-js engine. Default 100. */
  readonly maxConcurrentStreams?: number;
  /** Largest request metadata (headers) accepted, in bytes, grpc-js engine. Default 16 KiB. */
  readonly maxMetadataBytes?: number;
  readonly logger: Logger;
}

/** Why these options may not run in the production profile; undefined when they may. */
export function productionProblem(options: Pick<SwitchyardOptions, "tls" | "auth">): string | undefined {
  const missing = [
    ...(options.tls === undefined ? ["TLS (a certificate and key)"] : []),
    ...(options.auth === undefined ? ["bearer-token auth (a JWT secret, public key or JWKS)"] : []),
    ...(options.auth !== undefined && options.auth.audience === undefined ? ["the audience tokens must be issued for"] : []),
  ];
  return missing.length === 0 ? undefined : `the production profile needs ${missing.join(", ")}`;
}

/** A running Switchyard process. */
export interface Switchyard {
  readonly port: number;
  /** Where data lives, for the startup log line. */
  readonly store: string;
  /** The bound metrics port, when serving metrics. */
  readonly metricsPort: number | undefined;
  /** Where traces go, for the startup log line; undefined without tracing. */
  readonly tracing: string | undefined;
  /** Where this process is registered (empty without a registry). */
  readonly registrations: readonly Registration[];
  /** What callers must present, for the startup log line: `off`, or what tokens are accepted (never a key). */
  readonly auth: string;
  /** Health NOT_SERVING, deregister, drain in-flight calls, close channels and stores. */
  close(): Promise<void>;
}

/**
 * The composition root: opens the stores, wires each service's use cases to
 * its store and dependencies, and hosts them on one gRPC server. Hosting one
 * service or both is only a matter of this wiring.
 */
export async function startSwitchyard(options: SwitchyardOptions): Promise<Switchyard> {
  const hostsUser = options.services.includes("user");
  const hostsOrder = options.services.includes("order");
  if (hostsOrder && !hostsUser && options.userServiceTarget === undefined) {
    throw new Error("OrderService needs UserService: host both, or pass userServiceTarget");
  }
  if (hostsOrder && options.userServiceTarget?.startsWith("etcd:///") && options.registry === undefined) {
    throw new Error(`${options.userServiceTarget} resolves through a registry: pass one (etcd://host:port)`);
  }
  if (options.profile === "production") {
    const problem = productionProblem(options);
    if (problem !== undefined) throw new Error(problem);
  }
  const registryEndpoints = options.registry === undefined ? undefined : parseEtcdUrl(options.registry);
  const shedLoad = loadSheddingInterceptor(options.maxConcurrentCalls ?? 1_000);
  // Keys before certificates and stores: a wrong file fails the start at once.
  const verifier: TokenVerifier | undefined = options.auth ? await loadTokenVerifier(options.auth) : undefined;
  // Certificates first: a wrong file fails the start before any store opens.
  const serverTls: ServerTls | undefined = options.tls ? await loadServerTls(options.tls, options.logger) : undefined;
  let userTls: ClientTls | undefined;
  let stores: Awaited<ReturnType<typeof openStores>>;
  try {
    if (hostsOrder && options.userServiceTarget && options.userServiceTls) {
      userTls = await loadClientTls(options.userServiceTls, options.logger);
    }
    stores = await openStores({
      dataDir: options.dataDir,
      services: options.services,
      ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
      ...(options.memory === true ? { memory: true } : {}),
      onBackgroundError: (error) => options.logger.warn({ err: error }, "database connection error between queries"),
    });
  } catch (error) {
    serverTls?.close();
    userTls?.close();
    throw error;
  }
  let telemetry: Telemetry;
  try {
    telemetry = await startTelemetry({
      ...(options.otlpEndpoint === undefined ? {} : { otlpEndpoint: options.otlpEndpoint }),
      ...(options.traceSampleRatio === undefined ? {} : { traceSampleRatio: options.traceSampleRatio }),
      ...(options.metricsPort === undefined ? {} : { metricsPort: options.metricsPort, metricsHost: options.host ?? "0.0.0.0" }),
    });
  } catch (error) {
    serverTls?.close();
    userTls?.close();
    await stores.close();
    throw error;
  }
  // Timed only when metrics are served; otherwise the stores as opened.
  stores = instrumentStores(stores, telemetry.storeMetrics);
  const serverOptions = {
    logger: options.logger,
    // Tracing outermost, so that the call's log line carries its trace id.
    // Then load shedding, then authentication and the access policy.
    interceptors: [
      ...telemetry.serverInterceptors,
      loggingInterceptor(options.logger),
      // Shed load before any work is done for the call (logged and counted all the same).
      shedLoad,
      ...(verifier ? [authInterceptor({ policy: switchyardAccessPolicy(options.profile), verifier })] : []),
      ...(options.interceptors ?? []),
    ],
    // Reflection bypasses the interceptors, so production does not serve it.
    reflection: options.profile !== "production",
    // Applied where the engines read grpc-timeout, so every handler (and its outbound calls) sees the capped deadline.
    maxDeadlineMs: options.maxDeadlineMs ?? 60_000,
    ...(options.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: options.drainTimeoutMs }),
    ...(options.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: options.maxConcurrentStreams }),
    ...(options.maxMetadataBytes === undefined ? {} : { maxMetadataBytes: options.maxMetadataBytes }),
  };
  const server =
    options.engine === "grpc-js"
      ? createRpcServer({ ...(serverTls ? { credentials: serverTls.credentials } : {}), ...serverOptions })
      : createHttp2RpcServer({
          ...(serverTls ? { tls: serverTls.secureServerOptions(), onTlsReload: serverTls.onReload } : {}),
          ...serverOptions,
        });
  if (stores.users) server.addService(userServiceHandlers(createUserUseCases(stores.users)));

  // OrderService reaches UserService through a generated client over one
  // shared transport: a gRPC channel to the given target, or, when both
  // services live here, the in-process transport (same semantics, no socket).
  let userTransport: Transport | undefined;
  if (stores.orders) {
    const target = options.userServiceTarget;
    userTransport = target
      ? createGrpcTransport({
          target,
          services: [UserServiceDefinition],
          ...(userTls ? { credentials: userTls.credentials } : {}),
          ...(telemetry.attemptObserver === undefined ? {} : { attemptObserver: telemetry.attemptObserver }),
          channelOptions: {
            ...userTls?.channelOptions,
            ...(options.registry === undefined ? {} : etcdChannelOptions(options.registry)),
          },
        })
      : // With auth on, in-process calls carry OrderService's identity, as its
        // client certificate does over the network: the same policy applies.
        createInProcessTransport(verifier ? asInProcessCaller(server.dispatcher, ORDER_SERVICE_IDENTITY) : server.dispatcher);
    const users = createUserServiceDirectory(
      createClient(UserServiceDefinition, userTransport, { interceptors: telemetry.clientInterceptors }),
    );
    server.addService(orderServiceHandlers(createOrderUseCases(stores.orders, users)));
  }

  let port: number;
  try {
    port = await server.listen(`${options.host ?? "0.0.0.0"}:${options.port}`);
  } catch (error) {
    userTransport?.close();
    serverTls?.close();
    userTls?.close();
    await Promise.all([stores.close(), telemetry.close()]);
    throw error;
  }

  // Announced only once it listens, withdrawn first thing on close.
  let registrations: Registration[] = [];
  if (registryEndpoints) {
    const address = advertisedAddress(options.advertiseAddress, options.host ?? "0.0.0.0", port);
    const names = [...(hostsUser ? ["user-service"] : []), ...(hostsOrder ? ["order-service"] : [])];
    const registered = await Promise.allSettled(
      names.map((serviceName) =>
        registerInstance({
          endpoints: registryEndpoints,
          serviceName,
          address,
          logger: options.logger,
          ...(options.registryTtlSeconds === undefined ? {} : { ttlSeconds: options.registryTtlSeconds }),
        }),
      ),
    );
    registrations = registered.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
    const failed = registered.find((result) => result.status === "rejected");
    if (failed) {
      await Promise.all(registrations.map((registration) => registration.deregister()));
      await server.shutdown();
      userTransport?.close();
      serverTls?.close();
      userTls?.close();
      await Promise.all([stores.close(), telemetry.close()]);
      throw failed.reason;
    }
  }

  return {
    port,
    store: stores.describe,
    metricsPort: telemetry.metricsPort,
    tracing: telemetry.tracing,
    registrations,
    auth: verifier ? `bearer tokens (${verifier.description})` : "off",
    async close() {
      // The drain, in order: health NOT_SERVING, out of the registry (so
      // clients stop picking this instance), then stop accepting and finish
      // the calls in flight, then close channels and stores.
      server.health.setAllNotServing();
      await Promise.all(registrations.map((registration) => registration.deregister()));
      await server.shutdown();
      userTransport?.close();
      serverTls?.close();
      userTls?.close();
      // After the drain, so that the last calls' spans are exported too.
      await Promise.all([stores.close(), telemetry.close()]);
    },
  };
}

/** `host:port` other hosts connect to: the given address (its port defaulting to the bound one), else the bound one. */
function advertisedAddress(advertise: string | undefined, host: string, port: number): string {
  if (advertise !== undefined && /^\[[^\]]+\]:\d+$|^[^:]+:\d+$/.test(advertise)) return advertise;
  const wildcard = host === "0.0.0.0" || host === "::" || host === "[::]" || host === "";
  const name = advertise ?? (wildcard ? "127.0.0.1" : host);
  return `${isIPv6(name) ? `[${name}]` : name}:${port}`;
}
