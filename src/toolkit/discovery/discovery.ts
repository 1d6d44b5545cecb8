/**
 * Service discovery: how a client finds the instances behind a target such as
 * `etcd:///user-service`, and how an instance announces itself.
 *
 * There is one Discovery per target scheme (`etcd:`, `static:`, `dns:`).
 * The http2 client reads them directly; `etcd:` and `static:` are also
 * plugged into grpc-js as name resolvers by grpc-resolver.ts (grpc-js has its
 * own `dns:`). Either way a channel to `etcd:///user-service` gets its
 * endpoint list from etcd and spreads calls round-robin over one connection
 * per endpoint.
 */

/** A gRPC target, split: `etcd://127.0.0.1:2379/user-service` → etcd, 127.0.0.1:2379, user-service. */
export interface DiscoveryTarget {
  readonly scheme: string;
  /** Empty when the target names none (`etcd:///user-service`). */
  readonly authority: string;
  readonly path: string;
  /** The channel's options: where a scheme finds its defaults (see ETCD_ENDPOINTS_OPTION). */
  readonly options: Readonly<Record<string, unknown>>;
}

/** Receives what a watch learns. Never called synchronously from `watch`. */
export interface EndpointListener {
  /** The complete current list of `host:port` addresses, on start and on every change. */
  update(addresses: readonly string[]): void;
  /**
   * Discovery failed while no list is known yet. Once a list is known a
   * failure is not reported: the last known list stays in use.
   */
  error(message: string): void;
}

/** A running watch; close() releases it. */
export interface EndpointWatch {
  close(): void;
}

/** One way of finding the instances of a service, selected by the target's scheme. */
export interface Discovery {
  /** The target scheme this implementation answers, e.g. `etcd`. */
  readonly scheme: string;
  /** The default `:authority` of calls to `target` (the service name). */
  authorityOf(target: DiscoveryTarget): string;
  /** Starts watching `target`'s instances. */
  watch(target: DiscoveryTarget, listener: EndpointListener): EndpointWatch;
}

/** An instance announced in a registry; deregister() withdraws it at once. */
export interface Registration {
  readonly serviceName: string;
  /** What clients connect to, `host:port`. */
  readonly address: string;
  /** Where the registry keeps it, e.g. `/switchyard/user-service/<instance-id>`. */
  readonly key: string;
  /** Withdraws the instance; idempotent; never rejects (a registry that is down lets the entry expire). */
  deregister(): Promise<void>;
}
