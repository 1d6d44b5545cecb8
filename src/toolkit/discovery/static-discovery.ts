import type { Discovery } from "./discovery.js";

/**
 * `static:///host1:port,host2:port`: a fixed list of instances, host names
 * allowed (each is looked up once, when the channel connects). grpc-js's own
 * `ipv4:///a:p,b:p` (addresses only) and `dns:///name:port` targets work the
 * same way: every target gets round-robin over its endpoints.
 */
export const staticDiscovery: Discovery = {
  scheme: "static",
  authorityOf: (target) => target.path.split(",")[0] ?? target.path,
  watch(target, listener) {
    const addresses = target.path
      .split(",")
      .map((address) => address.trim())
      .filter((address) => address !== "");
    const timer = setImmediate(() =>
      addresses.length > 0 ? listener.update(addresses) : listener.error("the static: target lists no addresses"),
    );
    return { close: () => clearImmediate(timer) };
  },
};
