import http2 from "node:http2";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import { Code } from "../../rpc/code.js";
import { type Logger, traceFieldsOf } from "../../log/logger.js";
import { peerIdentityOf } from "../../tls/peer-identity.js";
import { CappedCalls, checkMaxDeadline } from "../deadline-cap.js";
import { type CallObserver, createDispatcher } from "../dispatcher.js";
import { createHealth, type Health } from "../health.js";
import { addReflection, REFLECTION_PATHS } from "../reflection.js";
import type { GrpcJsService, RpcServer } from "../rpc-server.js";
import type { ServerInterceptor } from "../server-interceptor.js";
import { TUNNEL_PATH } from "../../wire/call-tunnel.js";
import { ServedTunnel } from "./call-tunnel.js";
import { GrpcJsServiceHost } from "./grpc-js-adapter.js";
import { formatPeer, isGrpcProtoContentType } from "../../wire/protocol.js";
import { engineError, sendError, sendHttpError, sendTrailersOnly, statusHeaders } from "./response.js";
import { type CallEnvironment, type ConnectionFacts, UnaryCall } from "./unary-call.js";

/** Options for createHttp2RpcServer. */
export interface Http2RpcServerOptions {
  readonly logger: Logger;
  /** Run around every handler call, first listed outermost. Default none. */
  readonly interceptors?: readonly ServerInterceptor[];
  /** Told of every call, outside the interceptors (metrics). Default none. */
  readonly observer?: CallObserver;
  /** Largest request message accepted, in bytes, before and after decompression. Default 4 MiB. */
  readonly maxReceiveMessageBytes?: number;
  /** Calls (HTTP/2 streams) one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); more wait. Default 100. */
  readonly maxConcurrentStreams?: number;
  /**
   * Largest request metadata (HTTP/2 header list) accepted, in bytes
   * (SETTINGS_MAX_HEADER_LIST_SIZE): node:http2 resets a stream whose headers
   * are larger with ENHANCE_YOUR_CALM, which callers see as RESOURCE_EXHAUSTED. Default 16 KiB.
   */
  readonly maxMetadataBytes?: number;
  /** How long shutdown waits for in-flight calls before cancelling them. Default 10 s. */
  readonly drainTimeoutMs?: number;
  /**
   * Longest a call may run: a call without a deadline, or with a later one,
   * gets this much; its handler's context carries the shorter deadline, and
   * the caller gets DEADLINE_EXCEEDED when it passes. Default: no cap.
   */
  readonly maxDeadlineMs?: number;
  /** Serve grpc.reflection v1 and v1alpha. Default true. */
  readonly reflection?: boolean;
  /**
   * Serve TLS (HTTP/2 over TLS with ALPN `h2`) with these options; with
   * `requestCert` and a `ca`, callers' verified certificates become
   * CallContext.peerIdentity. Plaintext (h2c) when absent.
   */
  readonly tls?: http2.SecureServerOptions;
  /**
   * Follows rotated certificates: called once with a function that installs
   * new ones (server.setSecureContext) for connections from then on; returns
   * a function that stops following. Only with `tls`.
   */
  readonly onTlsReload?: (apply: (options: SecureContextOptions) => void) => () => void;
  /** Services written for grpc-js's `addService`, served through the engine's grpc-js adapter. Default none. */
  readonly grpcJsServices?: readonly GrpcJsService[];
}

/**
 * Hosts services on node:http2 directly: a lean implementation of the gRPC
 * over HTTP/2 protocol for the unary methods Switchyard services have, plus
 * an adapter that serves grpc.health.v1 and server reflection (which use
 * streaming) from their grpc-js packages, and the call tunnel
 * (switchyard.tunnel.v1) that carries many calls on one stream. Calls go
 * through the same Dispatcher as on the grpc-js engine, so services cannot
 * tell them apart.
 */
export function createHttp2RpcServer(options: Http2RpcServerOptions): RpcServer {
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const maxReceiveMessageBytes = options.maxReceiveMessageBytes ?? 4 * 1024 * 1024;
  const dispatcher = createDispatcher({
    logger: options.logger,
    interceptors: options.interceptors ?? [],
    ...(options.observer === undefined ? {} : { observer: options.observer }),
  });
  const adapted = new GrpcJsServiceHost(maxReceiveMessageBytes);
  for (const service of options.grpcJsServices ?? []) adapted.addService(service.definition, service.implementation);
  checkMaxDeadline(options.maxDeadlineMs);
  const environment: CallEnvironment = {
    dispatcher,
    maxReceiveMessageBytes,
    maxDeadlineMs: options.maxDeadlineMs,
    cappedCalls: options.maxDeadlineMs === undefined ? undefined : new CappedCalls(options.maxDeadlineMs),
    connectionOf,
  };
  const settings: http2.Settings = {
    maxConcurrentStreams: options.maxConcurrentStreams ?? 100,
    maxHeaderListSize: options.maxMetadataBytes ?? 16 * 1024,
  };
  let server: http2.Http2Server | http2.Http2SecureServer;
  let stopFollowingTls: (() => void) | undefined;
  if (options.tls === undefined) {
    server = http2.createServer({ settings });
  } else {
    const secure = http2.createSecureServer({ ...options.tls, settings, allowHTTP1: false, ALPNProtocols: ["h2"] });
    stopFollowingTls = options.onTlsReload?.((context) => secure.setSecureContext(context));
    server = secure;
  }
  const sessions = new Set<http2.ServerHttp2Session>();
  const tunnels = new Set<ServedTunnel>();
  let health: Health | undefined;
  let listening = false;
  let stopping: Promise<void> | undefined;

  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    (session as SessionWithFacts)[CONNECTION] = connectionFacts(session, options.tls !== undefined);
    session.once("close", () => sessions.delete(session));
    session.on("error", (error) => options.logger.debug({ err: error }, "HTTP/2 connection error"));
    // Accepted just as shutdown began: GOAWAY at once.
    if (stopping !== undefined) session.close();
  });
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    try {
      serve(stream, headers);
    } catch (error) {
      // A bug here must cost one stream, not the process.
      options.logger.error(
        { err: error, path: headers[":path"], ...traceFieldsOf(headers["traceparent"] as string | undefined) },
        "could not serve an HTTP/2 stream",
      );
      stream.destroy();
    }
  });

  function serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    if (headers[":method"] !== "POST") return sendHttpError(stream, 405, { allow: "POST" });
    if (!isGrpcProtoContentType(headers["content-type"])) return sendHttpError(stream, 415, { accept: "application/grpc" });
    const te = headers.te;
    if (te !== "trailers" && !(typeof te === "string" && te.includes("trailers"))) {
      // Required of every gRPC client: its absence means a proxy on the way drops trailers.
      return sendTrailersOnly(stream, { ":status": 400, ...statusHeaders(Code.INTERNAL, 'gRPC requires the header "te: trailers"') });
    }
    const path = headers[":path"] ?? "";
    const route = dispatcher.route(path);
    if (route !== undefined) return UnaryCall.start(stream, headers, route, environment, path);
    if (path === TUNNEL_PATH) {
      if (stopping !== undefined) return sendError(stream, engineError(Code.UNAVAILABLE, "the server is shutting down"));
      tunnels.add(new ServedTunnel(stream, headers, environment, settings.maxHeaderListSize as number, (tunnel) => tunnels.delete(tunnel)));
      return;
    }
    if (adapted.start(stream, headers, path)) return;
    sendError(stream, engineError(Code.UNIMPLEMENTED, `the method ${path} is not implemented by this server`, "UNKNOWN_METHOD"));
  }

  return {
    dispatcher,
    get health(): Health {
      if (health === undefined) throw new Error("health is available once the server listens");
      return health;
    },
    addService(registration) {
      dispatcher.add(registration);
    },
    listen(address) {
      const names = dispatcher.services.map((s) => s.definition.fullName);
      health = createHealth(names);
      health.addTo(adapted);
      if (options.reflection ?? true) adapted.addOnFirstCall(REFLECTION_PATHS, (host) => addReflection(host, names));
      const { host, port } = parseAddress(address);
      return new Promise((resolve, reject) => {
        const onError = (error: Error): void => reject(error);
        server.once("error", onError);
        server.listen(port, host, () => {
          server.off("error", onError);
          listening = true;
          const bound = server.address();
          resolve(typeof bound === "object" && bound !== null ? bound.port : port);
        });
      });
    },
    shutdown() {
      stopping ??= (async () => {
        health?.setAllNotServing();
        health?.endWatches();
        dispatcher.draining = true;
        const closed = new Promise<void>((resolve) => (listening ? server.close(() => resolve()) : resolve()));
        // GOAWAY: clients send no new calls on these connections, and each
        // connection closes once its calls in flight are done.
        for (const session of sessions) session.close();
        // A tunnel stream would outlive every drain: it ends once its calls are answered.
        for (const tunnel of tunnels) tunnel.drain();
        const timer = setTimeout(() => {
          options.logger.warn({ drainTimeoutMs }, "drain timeout reached; cancelling calls still in flight");
          // Closing the streams aborts their handlers' signals.
          for (const session of sessions) session.destroy();
        }, drainTimeoutMs);
        await closed;
        clearTimeout(timer);
        stopFollowingTls?.();
      })();
      return stopping;
    },
  };
}

/** Splits `host:port`, `[v6]:port` or `:port`. */
function parseAddress(address: string): { host: string | undefined; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  if (match === null) throw new Error(`expected host:port, got "${address}"`);
  const host = match[1] ?? match[2];
  return { host: host === "" ? undefined : host, port: Number(match[3]) };
}

const CONNECTION: unique symbol = Symbol("switchyard.connection");
type SessionWithFacts = http2.ServerHttp2Session & { [CONNECTION]?: ConnectionFacts };
const UNKNOWN_CONNECTION: ConnectionFacts = { peer: "unknown", peerIdentity: undefined };

/** Peer address and verified identity of a new connection, worked out once for all its calls. */
function connectionFacts(session: http2.ServerHttp2Session, tls: boolean): ConnectionFacts {
  const socket = session.socket;
  let peerIdentity: string | undefined;
  if (tls) {
    const secure = socket as TLSSocket;
    // Only a certificate verified against the client CA proves an identity.
    if (secure.authorized) peerIdentity = peerIdentityOf(secure.getPeerCertificate());
  }
  return { peer: formatPeer(socket.remoteAddress, socket.remotePort), peerIdentity };
}

function connectionOf(stream: http2.ServerHttp2Stream): ConnectionFacts {
  return (stream.session as SessionWithFacts | undefined)?.[CONNECTION] ?? UNKNOWN_CONNECTION;
}
