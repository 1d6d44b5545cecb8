import { createRpcServer } from "../toolkit/server/grpc-js-server.js";
import { createHttp2RpcServer } from "../toolkit/server/http2/http2-server.js";
import type { CallObserver } from "../toolkit/server/dispatcher.js";
import type { RpcServer } from "../toolkit/server/rpc-server.js";
import type { ServerInterceptor } from "../toolkit/server/server-interceptor.js";
import type { ServerTls } from "../toolkit/tls/server-tls.js";
import type { SwitchyardOptions } from "./switchyard-options.js";

/**
 * The gRPC server on the engine the options choose (`http2` unless
 * `grpc-js`), with Switchyard's limits, its reflection rule and its TLS in
 * the form each engine takes. Both engines get the same settings, so the
 * choice changes throughput, never behaviour.
 */
export function createSwitchyardServer(
  options: SwitchyardOptions,
  interceptors: readonly ServerInterceptor[],
  observer: CallObserver | undefined,
  tls: ServerTls | undefined,
): RpcServer {
  const serverOptions = {
    logger: options.logger,
    interceptors,
    ...(observer === undefined ? {} : { observer }),
    // Reflection bypasses the interceptors, so production does not serve it.
    reflection: options.profile !== "production",
    // Applied where the engines read grpc-timeout, so every handler (and its outbound calls) sees the capped deadline.
    maxDeadlineMs: options.maxDeadlineMs ?? 60_000,
    ...(options.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: options.drainTimeoutMs }),
    ...(options.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: options.maxConcurrentStreams }),
    ...(options.maxMetadataBytes === undefined ? {} : { maxMetadataBytes: options.maxMetadataBytes }),
  };
  return options.engine === "grpc-js"
    ? createRpcServer({ ...(tls ? { credentials: tls.credentials } : {}), ...serverOptions })
    : createHttp2RpcServer({
        ...(tls ? { tls: tls.secureServerOptions(), onTlsReload: tls.onReload } : {}),
        ...serverOptions,
      });
}
