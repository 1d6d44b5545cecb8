import type * as grpc from "@grpc/grpc-js";
import type { Dispatcher } from "./dispatcher.js";
import type { Health } from "./health.js";
import type { ServiceRegistration } from "./service-registration.js";

/**
 * A gRPC server hosting Switchyard services. Implemented by the @grpc/grpc-js
 * engine (grpc-js-server.ts) and by the lean node:http2 engine
 * (http2/http2-server.ts); both route through the same Dispatcher, so service
 * code does not know which one serves it.
 */
export interface RpcServer {
  /** Hosts a service; call before listen. */
  addService(registration: ServiceRegistration): void;
  /** Where calls are routed: also what the in-process transport calls through. */
  readonly dispatcher: Dispatcher;
  /** Binds `host:port` (port 0 picks a free one) and resolves to the bound port. */
  listen(address: string): Promise<number>;
  /** The grpc.health.v1 service's state. */
  readonly health: Health;
  /**
   * Graceful stop: health NOT_SERVING, refuse new calls, let in-flight calls
   * finish within the drain timeout, then cancel what is left.
   */
  shutdown(): Promise<void>;
}

/**
 * A service written for @grpc/grpc-js's `Server.addService` (a package's, or
 * a test's such as grpc.testing.TestService), hosted beside Switchyard's on
 * either engine with all four call kinds; it bypasses the dispatcher.
 */
export interface GrpcJsService {
  readonly definition: grpc.ServiceDefinition;
  readonly implementation: grpc.UntypedServiceImplementation;
}
