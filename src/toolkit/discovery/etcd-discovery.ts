import type { Etcd3, Watcher } from "etcd3";
import type { Discovery, DiscoveryTarget, EndpointListener, EndpointWatch } from "./discovery.js";
import { backoff, openEtcd, parseEtcdUrl } from "./etcd-client.js";
import { DEFAULT_ETCD_PREFIX, servicePrefix } from "./etcd-registration.js";

/**
 * Channel option: the etcd endpoints (`host:port,host:port`) an `etcd:///name`
 * target resolves through when it names none itself. See etcdChannelOptions.
 */
export const ETCD_ENDPOINTS_OPTION = "switchyard.discovery.etcd_endpoints";
/** Channel option: the key prefix (default `switchyard`). */
export const ETCD_PREFIX_OPTION = "switchyard.discovery.etcd_prefix";

/** Channel options that point `etcd:///name` targets at the registry `etcd://host:port[,host:port…]`. */
export function etcdChannelOptions(registryUrl: string, prefix: string = DEFAULT_ETCD_PREFIX): Record<string, string> {
  return { [ETCD_ENDPOINTS_OPTION]: parseEtcdUrl(registryUrl).join(","), [ETCD_PREFIX_OPTION]: prefix };
}

/**
 * `etcd://host:port[,host:port…]/<service-name>`, or `etcd:///<service-name>`
 * with the endpoints in the channel option ETCD_ENDPOINTS_OPTION: the
 * instances registered by registerInstance under `/<prefix>/<service-name>/`.
 */
export const etcdDiscovery: Discovery = {
  scheme: "etcd",
  authorityOf: (target) => target.path,
  watch(target, listener) {
    const configured = target.options[ETCD_ENDPOINTS_OPTION];
    const endpoints = target.authority !== "" ? target.authority : typeof configured === "string" ? configured : "";
    const prefix = target.options[ETCD_PREFIX_OPTION];
    const keyPrefix = servicePrefix(typeof prefix === "string" ? prefix : DEFAULT_ETCD_PREFIX, target.path);
    if (endpoints === "") {
      const timer = setImmediate(() =>
        listener.error(`etcd:///${target.path} names no etcd: use etcd://host:port/${target.path}, or configure a registry (--registry)`),
      );
      return { close: () => clearImmediate(timer) };
    }
    return watchEtcd(endpoints.split(","), keyPrefix, listener);
  },
};

/**
 * How long instances known before the watch broke stay in the list when the
 * listing made after it does not hold them. An etcd that comes back empty
 * (or restored, with the instances' leases given up) lists an instance only
 * once it has put its key back, a keep-alive round trip later; dropping it
 * meanwhile cut calls it would have served. A watched delete (its lease
 * expired, it deregistered) still takes it out at once.
 */
const RELIST_GRACE_MS = 3_000;

/**
 * Lists the keys under `keyPrefix`, then watches them from the revision of
 * that list on, so no change is missed. When the watch breaks (etcd down,
 * restarted, compacted) it lists and watches again with backoff, and until
 * it succeeds the last known list stays in force: calls keep going to the
 * instances they were going to (see RELIST_GRACE_MS for what a new listing
 * lacks).
 */
function watchEtcd(endpoints: readonly string[], keyPrefix: string, listener: EndpointListener): EndpointWatch {
  const instances = new Map<string, string>();
  /** Known before the last re-listing, absent from it: kept until the grace ends. */
  const graced = new Map<string, string>();
  let graceTimer: NodeJS.Timeout | undefined;
  const delay = backoff(100, 1_000);
  let client: Etcd3 | undefined;
  let watcher: Watcher | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let lastDelivered: string | undefined;

  const deliver = (): void => {
    const addresses = [...new Set([...instances.values(), ...graced.values()])].sort();
    const signature = addresses.join(",");
    if (signature === lastDelivered) return;
    lastDelivered = signature;
    listener.update(addresses);
  };

  const sync = async (): Promise<void> => {
    if (client === undefined) {
      const opened = await openEtcd(endpoints);
      if (closed) return opened.close();
      client = opened;
    }
    const listed = await client.getAll().prefix(keyPrefix).exec();
    if (closed) return;
    const before = new Map(instances);
    instances.clear();
    for (const kv of listed.kvs) instances.set(kv.key.toString(), kv.value.toString());
    for (const [key, address] of before) if (!instances.has(key)) graced.set(key, address);
    if (graced.size > 0 && graceTimer === undefined) {
      graceTimer = setTimeout(() => {
        graceTimer = undefined;
        graced.clear();
        deliver();
      }, RELIST_GRACE_MS);
      graceTimer.unref();
    }
    deliver();
    const next = client
      .watch()
      .prefix(keyPrefix)
      .startRevision((BigInt(listed.header.revision) + 1n).toString())
      .watcher();
    watcher = next;
    next.on("put", (kv) => {
      if (watcher !== next) return;
      instances.set(kv.key.toString(), kv.value.toString());
      graced.delete(kv.key.toString());
      deliver();
    });
    next.on("delete", (kv) => {
      if (watcher !== next) return;
      instances.delete(kv.key.toString());
      graced.delete(kv.key.toString());
      deliver();
    });
    // Disconnected: etcd is gone or restarting. Error: etcd cancelled the
    // watch (e.g. its revision was compacted). Either way, list again.
    next.on("disconnected", () => restart(next, true));
    next.on("error", () => restart(next, false));
  };

  const restart = (broken: Watcher, cancel: boolean): void => {
    if (watcher !== broken) return;
    watcher = undefined;
    if (cancel) broken.cancel().catch(() => undefined);
    retryLater();
  };

  const run = (): void => {
    sync().then(
      () => delay.reset(),
      (error: unknown) => {
        if (closed) return;
        if (lastDelivered === undefined) {
          const reason = error instanceof Error ? error.message : String(error);
          listener.error(`could not list ${keyPrefix} in etcd at ${endpoints.join(",")}: ${reason}`);
        }
        retryLater();
      },
    );
  };

  const retryLater = (): void => {
    if (closed || retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      run();
    }, delay.next());
  };

  run();
  return {
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      clearTimeout(graceTimer);
      const current = watcher;
      watcher = undefined;
      current?.cancel().catch(() => undefined);
      client?.close();
    },
  };
}
