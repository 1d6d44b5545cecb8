import type { MethodObserver } from "../rpc/call-observer.js";
import type { Cancellation } from "../rpc/cancellation.js";
import type { MethodDefinition, ServiceDefinition } from "../rpc/definition.js";
import type { Metadata } from "../rpc/metadata.js";

/** Per-call settings a transport receives, already resolved by the client. */
export interface TransportCallOptions {
  /** Absolute deadline in epoch milliseconds. Every outbound call has one. */
  readonly deadline: number;
  /** Cancels the call: the peer sees the cancellation. */
  readonly cancellation: Cancellation | undefined;
  readonly metadata: Metadata | undefined;
  /** Told when the call goes out and how it ends (the status the caller gets); the transport tells it both. */
  readonly observer: MethodObserver | undefined;
}

/**
 * Carries calls to one target. A client is a typed object over a transport;
 * the transport decides how bytes travel (a gRPC channel, or in process).
 * Rejects with ClientError.
 */
export interface Transport {
  unary<Req, Res>(
    service: ServiceDefinition,
    method: MethodDefinition<Req, Res>,
    request: Req,
    options: TransportCallOptions,
  ): Promise<Res>;
  /** Closes the underlying connections; calls in flight are cancelled. */
  close(): void;
}
