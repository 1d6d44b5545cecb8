import { UserServiceDefinition } from "../gen/service/v1/service.js";
import { asInProcessCaller } from "../toolkit/auth/in-process-caller.js";
import type { CallAttemptObserver } from "../toolkit/client/call-attempt-observer.js";
import { createGrpcTransport } from "../toolkit/client/grpc-js-transport.js";
import { createHttp2Transport } from "../toolkit/client/http2/http2-transport.js";
import { createInProcessTransport } from "../toolkit/client/in-process-transport.js";
import type { Transport } from "../toolkit/client/transport.js";
import { etcdChannelOptions } from "../toolkit/discovery/etcd-discovery.js";
import type { Dispatcher } from "../toolkit/server/dispatcher.js";
import { loadClientTls, type ClientTls } from "../toolkit/tls/client-tls.js";
import { ORDER_SERVICE_IDENTITY } from "./access-policy.js";
import type { SwitchyardOptions } from "./switchyard-options.js";

/**
 * The client certificate and trust of OrderService's channel to a remote
 * UserService. Loaded with the server's certificates, before any store
 * opens, so that a wrong file fails the start at once. Undefined when this
 * process does not host OrderService, reaches UserService in process, or
 * dials it in plaintext.
 */
export async function loadUserServiceTls(options: SwitchyardOptions): Promise<ClientTls | undefined> {
  const hostsOrder = options.services.includes("order");
  if (!(hostsOrder && options.userServiceTarget && options.userServiceTls)) return undefined;
  return loadClientTls(options.userServiceTls, options.logger);
}

/** What createUserServiceTransport needs besides the options. */
export interface UserServiceTransportWiring {
  /** From loadUserServiceTls. */
  readonly tls: ClientTls | undefined;
  /** A span per attempt on the grpc-js channel; undefined without tracing. */
  readonly attemptObserver: CallAttemptObserver | undefined;
  /** This process's dispatcher, which the in-process transport calls through. */
  readonly dispatcher: Dispatcher;
  /** Whether callers are authenticated here (a token verifier is loaded). */
  readonly authenticated: boolean;
}

/**
 * The one transport OrderService's UserService client shares: a channel to
 * `userServiceTarget` (TLS, attempt spans, `etcd:` resolution when a
 * registry is given) on `clientEngine` (default: the server's engine) — the
 * lean node:http2 client, or @grpc/grpc-js — or, without a target, since both services then
 * live here, the in-process transport: the same semantics without a socket.
 * The lean client sends its calls through a call tunnel unless told not to.
 */
export function createUserServiceTransport(options: SwitchyardOptions, wiring: UserServiceTransportWiring): Transport {
  const target = options.userServiceTarget;
  if (target) {
    const discoveryOptions = options.registry === undefined ? {} : etcdChannelOptions(options.registry);
    const attempts = wiring.attemptObserver === undefined ? {} : { attemptObserver: wiring.attemptObserver };
    const hedging = options.userServiceHedgingDelayMs === undefined ? {} : { hedging: { methods: ["GetUser"], delayMs: options.userServiceHedgingDelayMs } };
    if ((options.clientEngine ?? options.engine ?? "http2") === "http2") {
      return createHttp2Transport({
        target,
        services: [UserServiceDefinition],
        ...(wiring.tls ? { tls: wiring.tls.connectionTls } : {}),
        ...attempts,
        ...hedging,
        discoveryOptions,
        logger: options.logger,
        tunnel: options.userServiceTunnel ?? true,
      });
    }
    return createGrpcTransport({
      target,
      services: [UserServiceDefinition],
      ...(wiring.tls ? { credentials: wiring.tls.credentials } : {}),
      ...attempts,
      ...hedging,
      channelOptions: { ...wiring.tls?.channelOptions, ...discoveryOptions },
    });
  }
  // With auth on, in-process calls carry OrderService's identity, as its
  // client certificate does over the network: the same policy applies.
  return createInProcessTransport(
    wiring.authenticated ? asInProcessCaller(wiring.dispatcher, ORDER_SERVICE_IDENTITY) : wiring.dispatcher,
  );
}
