import type { Discovery, DiscoveryTarget } from "../../discovery/discovery.js";
import { etcdDiscovery } from "../../discovery/etcd-discovery.js";
import { staticDiscovery } from "../../discovery/static-discovery.js";

const DISCOVERIES: readonly Discovery[] = [etcdDiscovery, staticDiscovery];

/** Where a target's endpoints come from, and the `:authority` its calls carry. */
export interface ResolvedTarget {
  readonly discovery: Discovery;
  readonly target: DiscoveryTarget;
  readonly authority: string;
}

/**
 * Reads a gRPC target (doc/naming.md): `etcd:///name` and `static:///a,b`
 * go to their Discovery; `host:port`, `dns:///host:port` and
 * `ipv4:`/`ipv6:` address lists become a static list (a host name is one
 * endpoint, looked up when it connects). Throws for anything else, e.g. `unix:`.
 */
export function resolveTarget(target: string, options: Readonly<Record<string, unknown>>): ResolvedTarget {
  const uri = /^([a-z][a-z0-9+.-]*):(?:\/\/([^/]*)\/)?(.*)$/i.exec(target);
  const scheme = uri?.[1]?.toLowerCase();
  const discovery = DISCOVERIES.find((candidate) => candidate.scheme === scheme);
  if (uri !== null && discovery !== undefined) {
    const parsed = { scheme: discovery.scheme, authority: uri[2] ?? "", path: uri[3] ?? "", options };
    return { discovery, target: parsed, authority: discovery.authorityOf(parsed) };
  }
  let list: string;
  if (scheme === "dns" || scheme === "ipv4" || scheme === "ipv6") list = uri?.[3] ?? "";
  else if (/^(\[[^\]]+\]|[^:/[\]]+):\d+$/.test(target)) list = target;
  else throw new Error(`the http2 client cannot dial "${target}": give host:port, dns:///host:port, ipv4:, static:/// or etcd:/// targets`);
  const parsed = { scheme: "static", authority: "", path: list, options };
  return { discovery: staticDiscovery, target: parsed, authority: staticDiscovery.authorityOf(parsed) };
}
