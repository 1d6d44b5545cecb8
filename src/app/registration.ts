import { isIPv6 } from "node:net";
import type { Registration } from "../toolkit/discovery/discovery.js";
import { registerInstance } from "../toolkit/discovery/etcd-registration.js";
import type { CleanupStack } from "./cleanup-stack.js";
import type { SwitchyardOptions } from "./switchyard-options.js";

/**
 * Announces each hosted service in the etcd registry (`user-service`,
 * `order-service`) at the address other hosts reach this process at. Called
 * only once the server listens; each registration pushes its deregistration
 * onto `cleanup`, so that close() withdraws it before the drain. When one
 * fails, it throws, and the caller's unwind withdraws those that succeeded.
 */
export async function registerServices(
  options: SwitchyardOptions,
  endpoints: readonly string[],
  port: number,
  cleanup: CleanupStack,
): Promise<Registration[]> {
  const address = advertisedAddress(options.advertiseAddress, options.host ?? "0.0.0.0", port);
  const names = [
    ...(options.services.includes("user") ? ["user-service"] : []),
    ...(options.services.includes("order") ? ["order-service"] : []),
  ];
  const registered = await Promise.allSettled(
    names.map((serviceName) =>
      registerInstance({
        endpoints,
        serviceName,
        address,
        logger: options.logger,
        ...(options.registryTtlSeconds === undefined ? {} : { ttlSeconds: options.registryTtlSeconds }),
      }),
    ),
  );
  const registrations = registered.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  for (const registration of registrations) cleanup.push("registry", () => registration.deregister());
  const failed = registered.find((result) => result.status === "rejected");
  if (failed) throw failed.reason;
  return registrations;
}

/**
 * `host:port` other hosts connect to: the given address (its port defaulting
 * to the bound one), else the bound one, with `127.0.0.1` for a wildcard host.
 */
export function advertisedAddress(advertise: string | undefined, host: string, port: number): string {
  if (advertise !== undefined && /^\[[^\]]+\]:\d+$|^[^:]+:\d+$/.test(advertise)) return advertise;
  const wildcard = host === "0.0.0.0" || host === "::" || host === "[::]" || host === "";
  const name = advertise ?? (wildcard ? "127.0.0.1" : host);
  return `${isIPv6(name) ? `[${name}]` : name}:${port}`;
}
