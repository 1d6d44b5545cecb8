import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { experimental } from "@grpc/grpc-js";
import type { Discovery, DiscoveryTarget, EndpointWatch } from "./discovery.js";
import { etcdDiscovery } from "./etcd-discovery.js";
import { staticDiscovery } from "./static-discovery.js";

type Endpoints = experimental.StatusOr<experimental.Endpoint[]>;
type ResolverConstructor = Parameters<typeof experimental.registerResolver>[1];

const installed = new Set<string>();

/**
 * Makes `etcd:` and `static:` targets usable by every grpc-js channel of this
 * process. Idempotent. (grpc-js resolves `dns:`, `ipv4:`, `ipv6:` and `unix:` itself.)
 */
export function installDiscoveryResolvers(): void {
  for (const discovery of [etcdDiscovery, staticDiscovery]) {
    if (installed.has(discovery.scheme)) continue;
    experimental.registerResolver(discovery.scheme, resolverFor(discovery));
    installed.add(discovery.scheme);
  }
}

/**
 * A grpc-js name resolver over a Discovery: every list the discovery reports
 * becomes the channel's endpoint list (its load balancing policy — round
 * robin, from the channel's service config — keeps one connection per
 * endpoint). A discovery error reaches the channel only while no list is known.
 * An empty list reaches it as an UNAVAILABLE error ("no instances of … are
 * registered"), so calls fail at once rather than wait for an instance.
 */
export function resolverFor(discovery: Discovery): ResolverConstructor {
  return class DiscoveryResolver implements experimental.Resolver {
    private watch: EndpointWatch | undefined;
    /** Bumped by destroy() and by every list, so a slow host name lookup cannot deliver a stale list. */
    private sequence = 0;

    constructor(
      private readonly uri: experimental.GrpcUri,
      private readonly listener: experimental.ResolverListener,
      private readonly options: grpc.ChannelOptions,
    ) {}

    static getDefaultAuthority(uri: experimental.GrpcUri): string {
      return discovery.authorityOf(targetOf(uri, {}));
    }

    updateResolution(): void {
      // Started once (again after destroy()). Re-resolution requests — made
      // whenever a connection fails — need no answer: the watch reports every
      // change by itself, and answering each at once would resolve in a busy
      // loop while an endpoint is down.
      if (this.watch === undefined) this.start();
    }

    destroy(): void {
      this.watch?.close();
      this.watch = undefined;
      this.sequence++;
    }

    private start(): void {
      const target = targetOf(this.uri, this.options);
      this.watch = discovery.watch(target, {
        update: (addresses) => {
          const sequence = ++this.sequence;
          void toEndpoints(addresses).then((endpoints) => {
            if (sequence !== this.sequence) return;
            if (endpoints.length > 0) return this.deliver(experimental.statusOrFromValue(endpoints), "");
            // Nobody registered is delivered as an error, not as an empty
            // list: grpc-js's round_robin (1.14) turns an empty list into IDLE
            // with a queueing picker, so every call would wait for its deadline
            // (seen when both UserService replicas crashed and their leases ran
            // out). On an error it keeps the endpoints it has — dead ones fail
            // fast with UNAVAILABLE — or, with none, fails calls at once.
            const note = `no instances of ${target.path} are registered (${target.scheme}:)`;
            this.deliver(experimental.statusOrFromError({ code: grpc.status.UNAVAILABLE, details: note, metadata: new grpc.Metadata() }), note);
          });
        },
        error: (message) => {
          const status = { code: grpc.status.UNAVAILABLE, details: message, metadata: new grpc.Metadata() };
          this.deliver(experimental.statusOrFromError(status), message);
        },
      });
    }

    private deliver(endpoints: Endpoints, note: string): void {
      if (this.watch === undefined) return;
      this.listener(endpoints, {}, null, note);
    }
  };
}

function targetOf(uri: experimental.GrpcUri, options: grpc.ChannelOptions): DiscoveryTarget {
  return { scheme: uri.scheme ?? "", authority: uri.authority ?? "", path: uri.path, options };
}

/** `host:port` strings to grpc-js endpoints; a host name becomes one endpoint with all its addresses. */
async function toEndpoints(addresses: readonly string[]): Promise<experimental.Endpoint[]> {
  const endpoints = await Promise.all(
    addresses.map(async (address): Promise<experimental.Endpoint | undefined> => {
      const hostPort = experimental.splitHostPort(address);
      if (hostPort === null || hostPort.port === undefined) return undefined;
      const port = hostPort.port;
      if (isIP(hostPort.host) !== 0) return { addresses: [{ host: hostPort.host, port }] };
      const found = await lookup(hostPort.host, { all: true }).catch(() => []);
      return found.length === 0 ? undefined : { addresses: found.map(({ address: host }) => ({ host, port })) };
    }),
  );
  return endpoints.filter((endpoint): endpoint is experimental.Endpoint => endpoint !== undefined);
}
