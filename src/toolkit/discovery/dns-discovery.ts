import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { parseAddress } from "./address.js";
import type { Discovery } from "./discovery.js";

/** How often a name is looked up again: a scaled-out service gains endpoints without a restart. */
export const DNS_REFRESH_MS = 30_000;

/**
 * `dns:///name:port` (and plain `name:port`): every address the name has
 * (A and AAAA, as getaddrinfo lists them) is an endpoint, looked up again
 * every DNS_REFRESH_MS — a Kubernetes headless service's pods, say. A failed
 * lookup keeps the last list; only a first failure is reported. Used by the
 * http2 client; grpc-js channels have their own `dns:` resolver.
 */
export const dnsDiscovery: Discovery = {
  scheme: "dns",
  authorityOf: (target) => target.path,
  watch(target, listener) {
    const split = parseAddress(target.path);
    if (split === undefined) {
      const timer = setImmediate(() => listener.error(`dns:///${target.path} is not name:port`));
      return { close: () => clearImmediate(timer) };
    }
    const { host, port } = split;
    const format = (address: string): string => (isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`);
    let known = false;
    let closed = false;
    const resolve = async (): Promise<void> => {
      try {
        const found = isIP(host) !== 0 ? [{ address: host }] : await lookup(host, { all: true });
        if (closed) return;
        known = true;
        listener.update([...new Set(found.map(({ address }) => format(address)))]);
      } catch (error) {
        if (!closed && !known) listener.error(`cannot look up ${host}: ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    const first = setImmediate(() => void resolve());
    const refresh = setInterval(() => void resolve(), DNS_REFRESH_MS);
    refresh.unref();
    return {
      close: () => {
        closed = true;
        clearImmediate(first);
        clearInterval(refresh);
      },
    };
  },
};
