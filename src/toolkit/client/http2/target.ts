import { parseAddress } from "../../discovery/address.js";
import type { Discovery, DiscoveryTarget } from "../../discovery/discovery.js";
import { dnsDiscovery } from "../../discovery/dns-discovery.js";
import { etcdDiscovery } from "../../discovery/etcd-discovery.js";
import { staticDiscovery } from "../../discovery/static-discovery.js";

const DISCOVERIES: readonly Discovery[] = [etcdDiscovery, staticDiscovery, dnsDiscovery];

/** Where a target's endpoints come from, and the `:authority` its calls carry. */
export interface ResolvedTarget {
  readonly discovery: Discovery;
  readonly target: DiscoveryTarget;
  readonly authority: string;
}

/**
 * Reads a gRPC target (doc/naming.md): `etcd:///name`, `static:///a,b` and
 * `dns:///name:port` go to their Discovery, and so does a plain `name:port`
 * (as `dns:`: every address of the name is an endpoint); `ipv4:`/`ipv6:`
 * address lists become a static list. Throws for anything else, e.g. `unix:`.
 */
export function resolveTarget(target: string, options: Readonly<Record<string, unknown>>): ResolvedTarget {
  const uri = /^([a-z][a-z0-9+.-]*):(?:\/\/([^/]*)\/)?(.*)$/i.exec(target);
  const scheme = uri?.[1]?.toLowerCase();
  const discovery = DISCOVERIES.find((candidate) => candidate.scheme === scheme);
  if (uri !== null && discovery !== undefined) return resolved(discovery, uri[2] ?? "", uri[3] ?? "", options);
  if (scheme === "ipv4" || scheme === "ipv6") return resolved(staticDiscovery, "", uri?.[3] ?? "", options);
  if (parseAddress(target) !== undefined) return resolved(dnsDiscovery, "", target, options);
  throw new Error(`the http2 client cannot dial "${target}": give host:port, dns:///host:port, ipv4:, static:/// or etcd:/// targets`);
}

function resolved(discovery: Discovery, authority: string, path: string, options: Readonly<Record<string, unknown>>): ResolvedTarget {
  const target = { scheme: discovery.scheme, authority, path, options };
  return { discovery, target, authority: discovery.authorityOf(target) };
}
