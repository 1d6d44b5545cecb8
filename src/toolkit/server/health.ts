import type * as grpc from "@grpc/grpc-js";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";

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

/** Health for the given services, all SERVING to start with, served by grpc-health-check. */
export function createHealth(serviceNames: readonly string[]): Health {
  const names = ["", ...serviceNames];
  const statuses = new Map<string, ServingStatus>(names.map((name) => [name, "SERVING"]));
  const implementation = new HealthImplementation(Object.fromEntries(statuses));
  const watches = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  // grpc-health-check notifies watchers on every setStatus; the protocol
  // sends a message only when the status changes.
  const setStatus = (name: string, status: ServingStatus): void => {
    if (statuses.get(name) === status) return;
    statuses.set(name, status);
    implementation.setStatus(name, status);
  };
  return {
    addTo(server) {
      implementation.addToServer({
        addService: (definition, handlers) => server.addService(definition, trackWatches(handlers, watches)),
      });
    },
    setServing: (service, serving) => setStatus(service, serving ? "SERVING" : "NOT_SERVING"),
    setAllNotServing: () => names.forEach((name) => setStatus(name, "NOT_SERVING")),
    endWatches() {
      for (const call of watches) call.end();
      watches.clear();
    },
  };
}

/** Wraps the Watch handler so the open streams are known. */
function trackWatches(
  handlers: grpc.UntypedServiceImplementation,
  watches: Set<grpc.ServerWritableStream<unknown, unknown>>,
): grpc.UntypedServiceImplementation {
  const watch = handlers["watch"] as grpc.handleServerStreamingCall<unknown, unknown> | undefined;
  if (watch === undefined) return handlers;
  const tracked: grpc.handleServerStreamingCall<unknown, unknown> = (call) => {
    watches.add(call);
    const forget = (): void => void watches.delete(call);
    call.once("cancelled", forget);
    call.once("close", forget);
    watch(call);
  };
  return { ...handlers, watch: tracked as grpc.UntypedHandleCall };
}
