import { UserServiceDefinition } from "../gen/service/v1/service.js";
import { createClient } from "../toolkit/client/create-client.js";
import { createGrpcTransport } from "../toolkit/client/grpc-js-transport.js";
import { createInProcessTransport } from "../toolkit/client/in-process-transport.js";
import type { Transport } from "../toolkit/client/transport.js";
import type { Logger } from "../toolkit/log/logger.js";
import { createRpcServer } from "../toolkit/server/grpc-js-server.js";
import { loggingInterceptor } from "../toolkit/server/logging-interceptor.js";
import type { ServerInterceptor } from "../toolkit/server/server-interceptor.js";
import { createOrderUseCases } from "../services/order/domain/order-use-cases.js";
import { createUserServiceDirectory } from "../services/order/transport/user-service-directory.js";
import { orderServiceHandlers } from "../services/order/transport/order-service-handlers.js";
import { createUserUseCases } from "../services/user/domain/user-use-cases.js";
import { userServiceHandlers } from "../services/user/transport/user-service-handlers.js";
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
  /**
   * Where OrderService finds UserService (a gRPC target). Default: in
   * process, when this process hosts UserService too. Required when it does not.
   */
  readonly userServiceTarget?: string;
  /** How long shutdown waits for in-flight calls. Default 10 s. */
  readonly drainTimeoutMs?: number;
  /** Extra server interceptors, run inside the built-in ones (e.g. auth, fault injection in tests). */
  readonly interceptors?: readonly ServerInterceptor[];
  readonly logger: Logger;
}

/** A running Switchyard process. */
export interface Switchyard {
  readonly port: number;
  /** Where data lives, for the startup log line. */
  readonly store: string;
  /** Health NOT_SERVING, drain in-flight calls, close channels and stores. */
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
  const stores = await openStores({
    dataDir: options.dataDir,
    services: options.services,
    ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
    onBackgroundError: (error) => options.logger.warn({ err: error }, "database connection error between queries"),
  });
  const server = createRpcServer({
    logger: options.logger,
    interceptors: [loggingInterceptor(options.logger), ...(options.interceptors ?? [])],
    ...(options.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: options.drainTimeoutMs }),
  });
  if (stores.users) server.addService(userServiceHandlers(createUserUseCases(stores.users)));

  // OrderService reaches UserService through a generated client over one
  // shared transport: a gRPC channel to the given target, or, when both
  // services live here, the in-process transport (same semantics, no socket).
  let userTransport: Transport | undefined;
  if (stores.orders) {
    const target = options.userServiceTarget;
    userTransport = target
      ? createGrpcTransport({ target, services: [UserServiceDefinition] })
      : createInProcessTransport(server.dispatcher);
    const users = createUserServiceDirectory(createClient(UserServiceDefinition, userTransport));
    server.addService(orderServiceHandlers(createOrderUseCases(stores.orders, users)));
  }

  let port: number;
  try {
    port = await server.listen(`${options.host ?? "0.0.0.0"}:${options.port}`);
  } catch (error) {
    await stores.close();
    throw error;
  }

  return {
    port,
    store: stores.describe,
    async close() {
      await server.shutdown();
      userTransport?.close();
      await stores.close();
    },
  };
}
