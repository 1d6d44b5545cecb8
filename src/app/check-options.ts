import type { SwitchyardOptions } from "./switchyard-options.js";

/** Why these options may not run in the production profile; undefined when they may. */
export function productionProblem(options: Pick<SwitchyardOptions, "tls" | "auth">): string | undefined {
  const missing = [
    ...(options.tls === undefined ? ["TLS (a certificate and key)"] : []),
    ...(options.auth === undefined ? ["bearer-token auth (a JWT secret, public key or JWKS)"] : []),
    ...(options.auth !== undefined && options.auth.audience === undefined ? ["the audience tokens must be issued for"] : []),
  ];
  return missing.length === 0 ? undefined : `the production profile needs ${missing.join(", ")}`;
}

/**
 * Throws when the options cannot make a working process: OrderService
 * without a UserService to call, an `etcd:///` target without a registry to
 * resolve it, the production profile without TLS and auth. Checked before
 * anything is opened, so that such a start fails at once and leaves nothing behind.
 */
export function checkOptions(options: SwitchyardOptions): void {
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
}
