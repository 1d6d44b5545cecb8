import type { Logger } from "../../log/logger.js";
import type { Code } from "../../rpc/code.js";
import type { EjectionSettings } from "../endpoint-ejection.js";
import { EndpointEjection } from "../endpoint-ejection.js";
import { endpointVerdict } from "../endpoint-verdict.js";
import { parseAddress } from "../../discovery/address.js";
import { Connection, type ConnectionSettings } from "./connection.js";

/** Why no endpoint can take a call now, when waiting would not help. */
export class NoEndpointError extends Error {
  override readonly name = "NoEndpointError";
}

/** A call waiting for a connection. */
export interface ConnectionWaiter {
  connectionReady(connection: Connection): void;
  noConnection(error: NoEndpointError): void;
}

/**
 * The endpoints of one target and a connection to each, shared round-robin
 * by the calls (grpc's round_robin policy): a call takes the next connection
 * that is ready and not ejected. While none is, a call waits for one if any
 * is still connecting, and fails at once if all are failing (gRPC's default,
 * not wait-for-ready). With outlier detection, the verdicts of finished
 * attempts eject an endpoint that fails as an endpoint (see endpointVerdict).
 */
export class EndpointPool {
  private readonly connections = new Map<string, Connection>();
  /** Ready and not ejected, in the order round robin walks them. */
  private rotation: Connection[] = [];
  private nextIndex = 0;
  private waiters: ConnectionWaiter[] = [];
  /** Why there are no endpoints (a discovery error, nobody registered); undefined once a list is known. */
  private noEndpoints: string | undefined;
  private resolved = false;
  private readonly ejection: EndpointEjection<Connection> | undefined;
  private readonly ejectionTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly settings: ConnectionSettings,
    ejection: EjectionSettings | undefined,
    /** Where ejections are told: they change where calls go, which an operator wants to see. */
    private readonly logger: Logger | undefined,
  ) {
    if (ejection !== undefined) {
      this.ejection = new EndpointEjection(ejection);
      this.ejectionTimer = setInterval(() => this.judge(), ejection.intervalMs);
      this.ejectionTimer.unref();
    }
  }

  /** The complete list of endpoints: new ones are connected, missing ones closed once their calls in flight are done. */
  setAddresses(addresses: readonly string[]): void {
    if (this.closed) return;
    // An entry that is not host:port (a broken registration) is skipped, as grpc-js's resolvers skip it.
    const wanted = new Set(addresses.filter((address) => parseAddress(address) !== undefined));
    if (wanted.size === 0) return this.setError(`no usable address among ${addresses.join(", ") || "none"}`);
    for (const [address, connection] of this.connections) {
      if (wanted.has(address)) continue;
      connection.close(true);
      this.connections.delete(address);
    }
    for (const address of wanted) {
      if (!this.connections.has(address)) {
        this.connections.set(address, new Connection(address, this.settings, () => this.rebuild()));
      }
    }
    this.resolved = true;
    this.noEndpoints = undefined;
    this.ejection?.setEndpoints(this.connections.values());
    this.rebuild();
  }

  /**
   * Discovery failed, or found nobody. Known endpoints stay in use (the
   * last list is better than none; dead ones fail fast); with none, calls
   * fail at once with `message`.
   */
  setError(message: string): void {
    if (this.closed || this.connections.size > 0) return;
    this.resolved = true;
    this.noEndpoints = message;
    this.rebuild();
  }

  /**
   * The next connection in rotation, or undefined when none is ready. One in
   * `avoid` (where a hedged call's other copies went) is passed over while
   * another is ready: a hedge to the endpoint that is slow helps nobody.
   */
  pick(avoid?: readonly Connection[]): Connection | undefined {
    const rotation = this.rotation;
    if (rotation.length === 0) return undefined;
    for (let turn = 0; turn < rotation.length; turn++) {
      if (this.nextIndex >= rotation.length) this.nextIndex = 0;
      const connection = rotation[this.nextIndex++] as Connection;
      if (avoid === undefined || !avoid.includes(connection)) return connection;
    }
    // Every ready connection is to be avoided: take the next in turn all the same.
    return rotation[this.nextIndex - 1];
  }

  /**
   * Tells `waiter` of a connection as soon as one is ready, or that none can
   * be (see the class); never synchronously. Call after pick() found none.
   */
  waitForReady(waiter: ConnectionWaiter): void {
    this.waiters.push(waiter);
    if (this.failure() !== undefined) queueMicrotask(() => this.settleWaiters());
  }

  /** Drops a waiter that gave up (deadline, cancellation). */
  forget(waiter: ConnectionWaiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
  }

  /**
   * Counts one finished attempt on `connection` for outlier detection.
   * `outrun`: another copy of its call answered after this one had had
   * the whole hedging delay, so its endpoint counts as failing: else a
   * replica that stalls would never be ejected while hedges answer for it.
   */
  record(connection: Connection, code: Code, outrun = false): void {
    this.ejection?.record(connection, outrun ? "failed" : endpointVerdict(code));
  }

  close(): void {
    this.closed = true;
    clearInterval(this.ejectionTimer);
    for (const connection of this.connections.values()) connection.close(false);
    this.connections.clear();
    this.noEndpoints = "the channel is closed";
    this.rebuild();
  }

  private failure(): NoEndpointError | undefined {
    if (this.closed) return new NoEndpointError("the channel is closed");
    if (!this.resolved) return undefined;
    if (this.noEndpoints !== undefined) return new NoEndpointError(this.noEndpoints);
    const states = [...this.connections.values()];
    if (states.some((connection) => connection.state !== "failing")) return undefined;
    const reasons = [...new Set(states.map((connection) => `${connection.address}: ${connection.lastError}`))];
    return new NoEndpointError(`no endpoint is reachable (${reasons.join("; ")})`);
  }

  /** Rebuilds the rotation after any change, and settles the calls waiting for a connection. */
  private rebuild(): void {
    this.rotation = [...this.connections.values()].filter(
      (connection) => connection.state === "ready" && !(this.ejection?.isEjected(connection) ?? false),
    );
    this.settleWaiters();
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const failure = this.rotation.length === 0 ? this.failure() : undefined;
    if (this.rotation.length === 0 && failure === undefined) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) {
      if (failure !== undefined) waiter.noConnection(failure);
      else waiter.connectionReady(this.pick() as Connection);
    }
  }

  private judge(): void {
    if (this.ejection === undefined) return;
    const { ejected, returned } = this.ejection.judge(Date.now());
    for (const connection of ejected) this.logger?.warn({ endpoint: connection.address }, "ejecting an endpoint whose calls fail");
    for (const connection of returned) this.logger?.info({ endpoint: connection.address }, "returning an ejected endpoint to rotation");
    if (ejected.length > 0 || returned.length > 0) this.rebuild();
  }
}
