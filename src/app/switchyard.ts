import { UserServiceDefinition } from "../gen/service/v1/service.js";
import { createClient } from "../toolkit/client/create-client.js";
import type { TokenVerifier } from "../toolkit/auth/token-verifier.js";
import type { Registration } from "../toolkit/discovery/discovery.js";
import { parseEtcdUrl } from "../toolkit/discovery/etcd-client.js";
import { loadShedding } from "../toolkit/server/load-shedding.js";
import type { Dispatcher } from "../toolkit/server/dispatcher.js";
import { startTelemetry } from "../toolkit/telemetry/telemetry.js";
import { loadServerTls } from "../toolkit/tls/server-tls.js";
import { createOrderUseCases } from "../services/order/domain/order-use-cases.js";
import { createUserServiceDirectory } from "../services/order/transport/user-service-directory.js";
import { orderServiceHandlers } from "../services/order/transport/order-service-handlers.js";
import { createUserUseCases } from "../services/user/domain/user-use-cases.js";
import { userServiceHandlers } from "../services/user/transport/user-service-handlers.js";
import { checkOptions } from "./check-options.js";
import { createCleanupStack } from "./cleanup-stack.js";
import { instrumentStores } from "./instrument-stores.js";
import { openStores } from "./open-stores.js";
import { registerServices } from "./registration.js";
import { serverInterceptors } from "./server-interceptors.js";
import type { SwitchyardOptions } from "./switchyard-options.js";
import { createSwitchyardServer } from "./switchyard-server.js";
import { createUserServiceTransport, loadUserServiceTls } from "./user-service-transport.js";

export { productionProblem } from "./check-options.js";
export type { ServiceName, SwitchyardOptions } from "./switchyard-options.js";

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
 * service or both is only a matter of this wiring. Each resource pushes its
 * closer onto one clean-up stack as it opens: a failed start unwinds what it
 * opened, close() unwinds all of it, in the drain order of cleanup-stack.ts.
 */
export async function startSwitchyard(options: SwitchyardOptions): Promise<Switchyard> {
  // What can be checked without opening anything is checked first.
  checkOptions(options);
  const registryEndpoints = options.registry === undefined ? undefined : parseEtcdUrl(options.registry);
  // Counts on the server's dispatcher, made further down (the interceptors go into it).
  let dispatcher: Dispatcher | undefined;
  const shedLoad = loadShedding(options.maxConcurrentCalls ?? 1_000, () => dispatcher?.inFlight ?? 0).interceptor;
  // Keys before certificates and stores: a wrong file fails the start at once.
  // Loaded only then: jose is some 180 modules a server without auth never runs.
  const verifier: TokenVerifier | undefined = options.auth
    ? await (await import("../toolkit/auth/token-verifier.js")).loadTokenVerifier(options.auth)
    : undefined;
  const cleanup = createCleanupStack();
  try {
    // Certificates first: a wrong file fails the start before any store opens.
    const serverTls = options.tls ? await loadServerTls(options.tls, options.logger) : undefined;
    if (serverTls) cleanup.push("tls", () => serverTls.close());
    const userTls = await loadUserServiceTls(options);
    if (userTls) cleanup.push("tls", () => userTls.close());
    const opened = await openStores({
      dataDir: options.dataDir,
      services: options.services,
      ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
      ...(options.memory === true ? { memory: true } : {}),
      onBackgroundError: (error) => options.logger.warn({ err: error }, "database connection error between queries"),
    });
    cleanup.push("state", () => opened.close());
    const telemetry = await startTelemetry({
      ...(options.otlpEndpoint === undefined ? {} : { otlpEndpoint: options.otlpEndpoint }),
      ...(options.traceSampleRatio === undefined ? {} : { traceSampleRatio: options.traceSampleRatio }),
      ...(options.metricsPort === undefined ? {} : { metricsPort: options.metricsPort, metricsHost: options.host ?? "0.0.0.0" }),
      ...(options.clusterMetrics === true ? { metricsViaClusterPrimary: true } : {}),
    });
    // Closed with the stores, after the drain, so that the last calls' spans are exported too.
    cleanup.push("state", () => telemetry.close());
    // Timed only when metrics are served; otherwise the stores as opened.
    const stores = instrumentStores(opened, telemetry.storeMetrics);

    const interceptors = serverInterceptors(options, { telemetry: telemetry.serverInterceptors, shedLoad, verifier });
    const server = createSwitchyardServer(options, interceptors, telemetry.serverObserver, serverTls);
    dispatcher = server.dispatcher;
    if (stores.users) server.addService(userServiceHandlers(createUserUseCases(stores.users)));
    if (stores.orders) {
      const userTransport = createUserServiceTransport(options, {
        tls: userTls,
        attemptObserver: telemetry.attemptObserver,
        dispatcher: server.dispatcher,
        authenticated: verifier !== undefined,
      });
      cleanup.push("channels", () => userTransport.close());
      const users = createUserServiceDirectory(
        createClient(UserServiceDefinition, userTransport, {
          interceptors: telemetry.clientInterceptors,
          ...(telemetry.clientObserver === undefined ? {} : { observer: telemetry.clientObserver }),
        }),
      );
      server.addService(orderServiceHandlers(createOrderUseCases(stores.orders, users)));
    }

    const port = await server.listen(`${options.host ?? "0.0.0.0"}:${options.port}`);
    cleanup.push("server", () => server.shutdown());
    // Announced only once it listens, withdrawn first thing on close (after health).
    const registrations = registryEndpoints ? await registerServices(options, registryEndpoints, port, cleanup) : [];
    cleanup.push("health", () => server.health.setAllNotServing());

    return {
      port,
      store: stores.describe,
      metricsPort: telemetry.metricsPort,
      tracing: telemetry.tracing,
      registrations,
      auth: verifier ? `bearer tokens (${verifier.description})` : "off",
      close: once(() => cleanup.unwind()),
    };
  } catch (error) {
    // What failed the start is what the caller must hear, not a clean-up failure after it.
    await cleanup.unwind().catch((cleanupError: unknown) =>
      options.logger.warn({ err: cleanupError }, "could not release everything after a failed start"),
    );
    throw error;
  }
}

/** `fn` run at most once: a second close() waits for the first instead of closing everything again. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= fn());
}
