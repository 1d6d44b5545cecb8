import { deriveCallContext } from "../rpc/call-context.js";
import type { Dispatcher } from "../server/dispatcher.js";

/**
 * The dispatcher as seen by an in-process caller that is `identity`: calls
 * made through it carry that identity as CallContext.peerIdentity, as a
 * network call would with that service's client certificate (mTLS). Give it
 * to createInProcessTransport so that a service hosted in the same process
 * passes the same access policy as when it calls over the network.
 */
export function asInProcessCaller(dispatcher: Dispatcher, identity: string): Dispatcher {
  return {
    get draining() {
      return dispatcher.draining;
    },
    set draining(value: boolean) {
      dispatcher.draining = value;
    },
    get services() {
      return dispatcher.services;
    },
    get inFlight() {
      return dispatcher.inFlight;
    },
    add: (registration) => dispatcher.add(registration),
    route: (path) => dispatcher.route(path),
    invoke: (route, request, context) => dispatcher.invoke(route, request, deriveCallContext(context, { peerIdentity: identity })),
    serve: (route, request, context, answer) =>
      dispatcher.serve(route, request, deriveCallContext(context, { peerIdentity: identity }), answer),
  };
}
