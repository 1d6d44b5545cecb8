import { CallTunnelServiceDefinition } from "../../gen/switchyard/tunnel/v1/tunnel.js";
import { methodPath } from "../rpc/definition.js";

/** The HTTP/2 path a client opens a call tunnel (proto/switchyard/tunnel/v1) on. */
export const TUNNEL_PATH = methodPath(CallTunnelServiceDefinition, CallTunnelServiceDefinition.methods.open);

/** The response header in which the server says how many calls one tunnel may carry at once. */
export const MAX_CALLS_HEADER = "switchyard-tunnel-max-calls";

/** Room for a call's envelope (method, metadata, status, trailers) on top of its message. */
export const ENVELOPE_BYTES = 64 * 1024;
