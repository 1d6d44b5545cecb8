import type * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";

/** The grpc.health.v1 state of a server: overall ("") and per service. */
export interface Health {
  addTo(server: Pick<grpc.Server, "addService">): void;
  setServing(service: string, serving: boolean): void;
  /** First step of shutdown: load balancers stop sending new calls. */
  setAllNotServing(): void;
}

/** Health for the given services, all SERVING to start with. */
export function createHealth(serviceNames: readonly string[]): Health {
  const names = ["", ...serviceNames];
  const implementation = new HealthImplementation(Object.fromEntries(names.map((name) => [name, "SERVING"])));
  return {
    addTo: (server) => implementation.addToServer(server),
    setServing: (service, serving) => implementation.setStatus(service, serving ? "SERVING" : "NOT_SERVING"),
    setAllNotServing: () => names.forEach((name) => implementation.setStatus(name, "NOT_SERVING")),
  };
}
