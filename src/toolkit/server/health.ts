import type * as grpc from "@grpc/grpc-js";
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthDefinition,
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthListRequest,
  type HealthListResponse,
} from "../../gen/grpc/health/v1/health.js";
import { Code } from "../rpc/code.js";
import { toGrpcJsDefinition } from "../rpc/grpc-js-definition.js";

/** The grpc.health.v1 state of a server: overall ("") and per service. */
export interface Health {
  addTo(server: Pick<grpc.Server, "addService">): void;
  setServing(service: string, serving: boolean): void;
  /** First step of shutdown: load balancers stop sending new calls. */
  setAllNotServing(): void;
  /**
   * Ends every open Watch stream (after it has seen the last status), so that
   * watchers do not hold a draining server open until its drain timeout.
   */
  endWatches(): void;
}

type Watch = grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;

/**
 * Health for the given services, all SERVING to start with. Served in
 * @grpc/grpc-js's handler shape, which both engines host, from our generated
 * code: grpc-health-check would load its .proto with protobufjs, whose
 * objects stay in the heap of every server (and raise its peak RSS).
 */
export function createHealth(serviceNames: readonly string[]): Health {
  const names = ["", ...serviceNames];
  const statuses = new Map<string, ServingStatus>(names.map((name) => [name, ServingStatus.SERVING]));
  const watches = new Map<Watch, string>();
  // The protocol sends a watcher a message only when its status changes.
  const setStatus = (name: string, status: ServingStatus): void => {
    if (statuses.get(name) === status) return;
    statuses.set(name, status);
    for (const [call, watched] of watches) if (watched === name) call.write({ status });
  };

  const check: grpc.handleUnaryCall<HealthCheckRequest, HealthCheckResponse> = (call, callback) => {
    const status = statuses.get(call.request.service);
    if (status !== undefined) return callback(null, { status });
    callback({ code: Code.NOT_FOUND as number, details: `the server has no health status for the service "${call.request.service}"` });
  };
  const list: grpc.handleUnaryCall<HealthListRequest, HealthListResponse> = (_call, callback) => {
    callback(null, { statuses: Object.fromEntries([...statuses].map(([name, status]) => [name, { status }])) });
  };
  const watch: grpc.handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse> = (call) => {
    const name = call.request.service;
    watches.set(call, name);
    const forget = (): void => void watches.delete(call);
    call.once("cancelled", forget);
    call.once("close", forget);
    call.write({ status: statuses.get(name) ?? ServingStatus.SERVICE_UNKNOWN });
  };

  return {
    addTo(server) {
      server.addService(toGrpcJsDefinition(HealthDefinition), { check, list, watch } as grpc.UntypedServiceImplementation);
    },
    setServing: (service, serving) => setStatus(service, serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING),
    setAllNotServing: () => names.forEach((name) => setStatus(name, ServingStatus.NOT_SERVING)),
    endWatches() {
      for (const call of watches.keys()) call.end();
      watches.clear();
    },
  };
}
