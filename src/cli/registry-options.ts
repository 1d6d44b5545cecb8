import { type Command, InvalidArgumentError } from "commander";
import { parseEtcdUrl } from "../toolkit/discovery/etcd-client.js";

/** Service-discovery flags of `serve`. */
export interface ServeRegistryFlags {
  registry?: string;
  advertiseAddress?: string;
  registryTtl: number;
}

/** Help texts of the discovery flags. */
export const SERVE_REGISTRY_HELP = {
  registry:
    "register the hosted services (user-service, order-service) in etcd, e.g. etcd://127.0.0.1:2379 " +
    "(several: etcd://h1:2379,h2:2379), and resolve --user-service etcd:///user-service through it",
  advertiseAddress: "host[:port] other hosts reach this process at (default: --host and the bound port; 127.0.0.1 for 0.0.0.0)",
  registryTtl: "seconds a crashed process stays registered (the etcd lease TTL)",
} as const;

/** Accepts `etcd://host:port[,host:port…]`. */
export function parseRegistry(value: string): string {
  try {
    parseEtcdUrl(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return value;
}

/** Accepts `host`, `host:port` or `[v6]:port`. */
export function parseAdvertiseAddress(value: string): string {
  if (!/^(\[[0-9a-f:.]+\]|[^\s:[\]/]+)(:\d{1,5})?$/i.test(value)) {
    throw new InvalidArgumentError("expected host or host:port, such as 10.0.0.5:50051");
  }
  return value;
}

/** Accepts a whole number of seconds from 1 to 3600. */
export function parseTtlSeconds(value: string): number {
  const seconds = Number(value);
  if (!/^\d+$/.test(value) || seconds < 1 || seconds > 3_600) throw new InvalidArgumentError("expected whole seconds from 1 to 3600");
  return seconds;
}

/** The discovery options of startSwitchyard from the flags; a usage error when they do not fit together. */
export function serveRegistryOf(
  flags: ServeRegistryFlags & { userService?: string },
  command: Command,
): { registry?: string; advertiseAddress?: string; registryTtlSeconds?: number } {
  if (flags.registry === undefined) {
    if (flags.userService?.startsWith("etcd:///")) {
      command.error(`error: --user-service ${flags.userService} resolves through a registry: add --registry etcd://host:port`);
    }
    if (flags.advertiseAddress !== undefined) command.error("error: --advertise-address needs --registry");
    return {};
  }
  return {
    registry: flags.registry,
    registryTtlSeconds: flags.registryTtl,
    ...(flags.advertiseAddress === undefined ? {} : { advertiseAddress: flags.advertiseAddress }),
  };
}
