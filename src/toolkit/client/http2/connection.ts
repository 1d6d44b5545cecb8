import http2, { type ClientHttp2Session, type SecureClientSessionOptions } from "node:http2";
import { isIP } from "node:net";
import { checkServerIdentity } from "node:tls";
import { parseAddress } from "../../discovery/address.js";
import { CallTunnel, type TunnelSettings } from "./call-tunnel.js";

/** How the client reaches its endpoints over TLS; read again for every new connection, so reloaded files apply. */
export interface ConnectionTls {
  /** PEM trust, certificate and key as they are now; undefined members fall back to Node's defaults (system CAs, no client certificate). */
  secureContext(): { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  /** The name the server's certificate must carry; default the host of the channel's authority (the target's name). */
  readonly serverName?: string;
}

/** Settings shared by every connection of a channel. */
export interface ConnectionSettings {
  readonly tls: ConnectionTls | undefined;
  /** What the server's certificate is checked against: ConnectionTls.serverName, else the target's host (not the address it resolved to). */
  readonly serverName: string;
  /** A PING goes out after this long without a frame while calls are open; default 300 s (grpc-go refuses more frequent ones). */
  readonly keepaliveTimeMs: number;
  /** The connection is dropped when a PING gets no answer in this time. */
  readonly keepaliveTimeoutMs: number;
  /** Open a call tunnel on every session; undefined: calls go on streams of their own. */
  readonly tunnel: TunnelSettings | undefined;
}

/** A tunnel that closed while its session stayed up is opened again after this long. */
const TUNNEL_REOPEN_MS = 1_000;
/** A new connection is ready once its tunnel is open or refused, or after this long without an answer. */
const TUNNEL_ANSWER_MS = 1_000;

/** Reconnect backoff of the gRPC connection-backoff spec (doc/connection-backoff.md). */
const BACKOFF = { initialMs: 1_000, multiplier: 1.6, jitter: 0.2, maxMs: 120_000, minConnectTimeoutMs: 20_000 };

/** Where a connection stands: `connecting` (first try or a retry after backoff), `ready`, or `failing` (waiting to retry). */
export type ConnectionState = "connecting" | "ready" | "failing";

/**
 * One HTTP/2 connection to one endpoint, kept up for the channel's life: it
 * connects at once, and after a failure or a GOAWAY it connects again
 * (a GOAWAY at once, a failure after the spec's jittered backoff). Calls in
 * flight on a session that goes away finish on it; new calls need `ready`.
 * Keepalive PINGs detect a peer that vanished without closing the socket.
 */
export class Connection {
  state: ConnectionState = "connecting";
  /** Why the last attempt to connect failed, for error messages. */
  lastError = "";
  /** Calls open on this connection; keepalive pings only while some are. */
  activeCalls = 0;
  session: ClientHttp2Session | undefined;
  /** The session's call tunnel, once asked for; calls go on streams of their own while it is not open. */
  tunnel: CallTunnel | undefined;
  private backoffMs = BACKOFF.initialMs;
  private retryTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    /** `host:port`, as discovery reported it. */
    readonly address: string,
    private readonly settings: ConnectionSettings,
    /** Told of every state change (the pool's picker follows them). */
    private readonly onStateChange: (connection: Connection) => void,
  ) {
    this.connect();
  }

  /**
   * Stops reconnecting and closes the session: `drain` lets the calls in
   * flight finish (an endpoint that left the list), otherwise they are
   * cancelled (the channel closes).
   */
  close(drain: boolean): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.keepaliveTimer);
    this.tunnel?.end();
    this.tunnel = undefined;
    if (drain) this.session?.close();
    else this.session?.destroy();
    this.session = undefined;
  }

  private connect(): void {
    if (this.closed) return;
    this.setState("connecting");
    // The pool only makes connections to addresses that parse.
    const { host, port } = parseAddress(this.address) as { host: string; port: number };
    const tls = this.settings.tls;
    const authority = `${tls === undefined ? "http" : "https"}://${host.includes(":") ? `[${host}]` : host}:${port}`;
    const options: SecureClientSessionOptions = { settings: { enablePush: false } };
    if (tls !== undefined) {
      Object.assign(options, tls.secureContext(), { ALPNProtocols: ["h2"] });
      const serverName = this.settings.serverName;
      // SNI carries names only (RFC 6066); an IP address is checked against the certificate without it.
      if (isIP(serverName) === 0) options.servername = serverName;
      options.checkServerIdentity = (_host, cert) => checkServerIdentity(serverName, cert);
    }
    const session = http2.connect(authority, options);
    this.session = session;
    const connectTimer = setTimeout(() => session.destroy(new Error("connection timed out")), Math.max(this.backoffMs, BACKOFF.minConnectTimeoutMs));
    connectTimer.unref();
    session.once("connect", () => {
      clearTimeout(connectTimer);
      this.backoffMs = BACKOFF.initialMs;
      this.lastError = "";
      this.startKeepalive(session);
      if (this.settings.tunnel === undefined) return this.setState("ready");
      // Ready once the server said whether it has tunnels: from the first call on, every call goes the same way.
      const ready = (): void => {
        clearTimeout(timer);
        if (this.session === session) this.setState("ready");
      };
      const timer = setTimeout(ready, TUNNEL_ANSWER_MS);
      timer.unref();
      this.openTunnel(session, ready);
    });
    session.on("error", (error: Error) => {
      this.lastError = error.message;
    });
    // A GOAWAY lets the calls in flight finish; new calls go to a new session at once.
    session.once("goaway", () => this.lost(session, false));
    session.once("close", () => {
      clearTimeout(connectTimer);
      this.lost(session, this.state !== "ready");
    });
    session.unref();
  }

  /** The session stopped taking calls: connect again, after a backoff when it never got ready. */
  private lost(session: ClientHttp2Session, failed: boolean): void {
    if (this.session !== session) return;
    this.session = undefined;
    // Its calls in flight are answered; the server then ends its stream, and the session can close.
    this.tunnel?.end();
    this.tunnel = undefined;
    clearInterval(this.keepaliveTimer);
    if (this.closed) return;
    if (!failed) {
      this.connect();
      return;
    }
    if (this.lastError === "") this.lastError = "the connection closed";
    this.setState("failing");
    const jitter = 1 + BACKOFF.jitter * (Math.random() * 2 - 1);
    this.retryTimer = setTimeout(() => this.connect(), this.backoffMs * jitter);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * BACKOFF.multiplier, BACKOFF.maxMs);
  }

  /** Opens the session's call tunnel; `answered` is told when it opens or closes. */
  private openTunnel(session: ClientHttp2Session, answered: () => void = () => undefined): void {
    const settings = this.settings.tunnel;
    if (settings === undefined || this.session !== session || session.destroyed || session.closed) return answered();
    try {
      this.tunnel = new CallTunnel(session, settings, {
        opened: answered,
        closed: (tunnel, refused) => {
          answered();
          if (this.tunnel !== tunnel) return;
          this.tunnel = undefined;
          // A server without tunnels is asked again on the next connection only.
          if (!refused) setTimeout(() => this.openTunnel(session), TUNNEL_REOPEN_MS).unref();
        },
      });
    } catch {
      // The session can take no stream (it is going away): calls wait for the next one.
      answered();
    }
  }

  private startKeepalive(session: ClientHttp2Session): void {
    const { keepaliveTimeMs, keepaliveTimeoutMs } = this.settings;
    this.keepaliveTimer = setInterval(() => {
      if (this.activeCalls === 0 || session.destroyed) return;
      const timeout = setTimeout(() => session.destroy(new Error(`no keepalive answer in ${keepaliveTimeoutMs} ms`)), keepaliveTimeoutMs);
      timeout.unref();
      session.ping((error) => {
        clearTimeout(timeout);
        if (error !== null && !session.destroyed) session.destroy(error);
      });
    }, keepaliveTimeMs);
    this.keepaliveTimer.unref();
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.onStateChange(this);
  }
}
