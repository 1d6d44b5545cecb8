import { parseAddress } from "../../discovery/address.js";
import type { Logger } from "../../log/logger.js";
import type { MethodObserver } from "../../rpc/call-observer.js";
import { ClientError } from "../../rpc/client-error.js";
import { Code } from "../../rpc/code.js";
import { isIdempotent, methodPath, type MessageCodec, type MethodDefinition, type ServiceDefinition } from "../../rpc/definition.js";
import type { Metadata } from "../../rpc/metadata.js";
import { decodeStatusDetails } from "../../rpc/status-details.js";
import { headerListBytes } from "../../wire/call-tunnel.js";
import { ACCEPTED_ENCODINGS, encodeBinaryHeader, encodeFrame, formatGrpcTimeout, MAX_TIMER_MS, PROTOCOL_HEADERS } from "../../wire/protocol.js";
import type { AttemptEnded, CallAttemptObserver } from "../call-attempt-observer.js";
import { ejectionSettings, type OutlierDetectionOptions } from "../endpoint-ejection.js";
import {
  type HedgingOptions,
  type HedgingSettings,
  hedgedMethods,
  hedgingSettings,
  isRetryableCode,
  pushbackOf,
  retryDelayMs,
  RetryThrottle,
  retrySettings,
  type RetryOptions,
  type RetrySettings,
} from "../retry-policy.js";
import type { Transport, TransportCallOptions } from "../transport.js";
import type { Connection, ConnectionTls } from "./connection.js";
import { type ConnectionWaiter, EndpointPool, type NoEndpointError } from "./endpoint-pool.js";
import { resolveTarget } from "./target.js";
import { type Attempt, type AttemptResult, statusDetailsOf, UnaryAttempt } from "./unary-attempt.js";

/** Options for createHttp2Transport; the same meaning as GrpcTransportOptions where the names match. */
export interface Http2TransportOptions {
  /** `host:port`, `dns:///host:port`, `ipv4:a:p,b:p`, `static:///a:p,b:p` or `etcd:///service`. */
  readonly target: string;
  /** The services called over this channel: their idempotent methods get retries. */
  readonly services: readonly ServiceDefinition[];
  /** Default: plaintext (h2c). */
  readonly tls?: ConnectionTls;
  /** Options of the target's discovery, e.g. etcdChannelOptions(registry). */
  readonly discoveryOptions?: Readonly<Record<string, unknown>>;
  /** `false` turns retries off. */
  readonly retry?: RetryOptions | false;
  /** Hedged reads, as for createGrpcTransport. Default: none. A hedged method is not retried. */
  readonly hedging?: HedgingOptions;
  /** `false` turns outlier detection off. */
  readonly outlierDetection?: OutlierDetectionOptions | false;
  /** Where endpoint ejections are logged. Default: nowhere. */
  readonly logger?: Logger;
  /** Told of every attempt (a span per attempt). */
  readonly attemptObserver?: CallAttemptObserver;
  /** Largest response message accepted. Default 4 MiB, as in every gRPC implementation. */
  readonly maxReceiveMessageBytes?: number;
  /** Default 300 s; see ConnectionSettings. */
  readonly keepaliveTimeMs?: number;
  /** Default 20 s. */
  readonly keepaliveTimeoutMs?: number;
  /**
   * Carry calls through a call tunnel (proto/switchyard/tunnel/v1) on each
   * connection, where the server offers one (a Switchyard server on the
   * http2 engine): one message each way per call instead of an HTTP/2
   * stream. Until the tunnel is open, beyond its call limit, for requests
   * over 64 KiB and with servers without it, calls go on streams of their
   * own. Default false.
   */
  readonly tunnel?: boolean;
}

const USER_AGENT = "switchyard-http2-client/0.1";
/** Headers the client sets itself, besides the protocol's own (PROTOCOL_HEADERS): no caller may set them. */
const CLIENT_HEADERS: ReadonlySet<string> = new Set(["user-agent", "grpc-previous-rpc-attempts"]);
const VALID_KEY = /^[0-9a-z_.-]+$/;
const VALID_TEXT = /^[\x20-\x7e]*$/;
/** The headers of an attempt that never went out. */
const NO_HEADERS = { get: () => undefined, set: () => undefined };

/**
 * A lean gRPC unary client on node:http2, behind the same Transport interface
 * as the grpc-js channel (createGrpcTransport) and with the same behaviour
 * for what a service-to-service hop needs: discovery (etcd, static lists, DNS),
 * round robin over one connection per endpoint, outlier detection with the
 * same verdicts, gRFC A6 retries with backoff, pushback and the shared retry
 * throttle, one transparent retry of a call the server never saw, deadlines
 * sent as `grpc-timeout`, cancellation as RST_STREAM, keepalive, TLS, hedged
 * reads and an observer per attempt; and, to Switchyard servers, a call
 * tunnel per connection (call-tunnel.ts) in place of a stream per call.
 *
 * Why we wrote it: per call, grpc-js's client spends about 70–79 µs of CPU
 * where node:http2's own `request()` needs 27 µs (resolving, retrying and
 * load-balancing call layers, Metadata objects, a stack trace per call);
 * that cost is most of the split topology's. No library offers a lean one:
 * @connectrpc/connect-node was slower still. Streaming calls are not here:
 * use the grpc-js transport for those.
 */
export function createHttp2Transport(options: Http2TransportOptions): Transport {
  const { discovery, target, authority } = resolveTarget(options.target, options.discoveryOptions ?? {});
  const scheme = options.tls === undefined ? "http" : "https";
  const maxReceiveBytes = options.maxReceiveMessageBytes ?? 4 * 1024 * 1024;
  const connections = {
    tls: options.tls,
    serverName: options.tls?.serverName ?? (parseAddress(authority)?.host ?? authority),
    keepaliveTimeMs: options.keepaliveTimeMs ?? 300_000,
    keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? 20_000,
    tunnel: options.tunnel === true ? { authority, scheme, userAgent: USER_AGENT, maxReceiveBytes } as const : undefined,
  };
  const pool = new EndpointPool(
    connections,
    options.outlierDetection === false ? undefined : ejectionSettings(options.outlierDetection),
    options.logger,
  );
  const watch = discovery.watch(target, {
    update: (addresses) =>
      addresses.length > 0 ? pool.setAddresses(addresses) : pool.setError(`no instances of ${target.path} are registered (${target.scheme}:)`),
    error: (message) => pool.setError(message),
  });
  const channel: Channel = {
    pool,
    authority,
    scheme,
    retry: options.retry === false ? undefined : retrySettings(options.retry ?? {}),
    throttle: new RetryThrottle(),
    attemptObserver: options.attemptObserver,
    maxReceiveBytes,
    closed: false,
  };
  const policies = new Map<MethodDefinition<unknown, unknown>, AttemptPolicy>();
  for (const service of options.services) for (const method of Object.values(service.methods)) if (isIdempotent(method)) policies.set(method, "retry");
  if (options.hedging !== undefined) {
    const hedging = hedgingSettings(options.hedging);
    for (const method of hedgedMethods(options.services, options.hedging)) policies.set(method, hedging);
  }
  const paths = new Map<MethodDefinition<unknown, unknown>, string>();
  return {
    unary<Req, Res>(service: ServiceDefinition, method: MethodDefinition<Req, Res>, request: Req, callOptions: TransportCallOptions): Promise<Res> {
      let path = paths.get(method as MethodDefinition<unknown, unknown>);
      if (path === undefined) {
        path = methodPath(service, method as MethodDefinition<unknown, unknown>);
        paths.set(method as MethodDefinition<unknown, unknown>, path);
      }
      const { observer } = callOptions;
      const started = observer === undefined ? 0 : observer.started();
      if (callOptions.cancellation?.abortReason !== undefined) {
        return refused(path, observer, started, Code.CANCELLED, `the call to ${path} was cancelled before it started`);
      }
      const invalid = callOptions.metadata === undefined ? undefined : metadataProblem(callOptions.metadata);
      if (invalid !== undefined) return refused(path, observer, started, Code.INTERNAL, `cannot send the call to ${path}: ${invalid}`);
      let frame: Buffer;
      try {
        frame = encodeFrame(method.requestType, request);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        return refused(path, observer, started, Code.INTERNAL, `cannot encode the request to ${path}: ${reason}`);
      }
      const policy = policies.get(method as MethodDefinition<unknown, unknown>);
      return new Promise<Res>((resolve, reject) => {
        new UnaryCall<Res>(channel, path, frame, callOptions, policy, method.responseType, started, resolve, reject).start();
      });
    },
    close() {
      channel.closed = true;
      watch.close();
      pool.close();
    },
  };
}

/** What every call of a channel shares. */
interface Channel {
  readonly pool: EndpointPool;
  readonly authority: string;
  readonly scheme: "http" | "https";
  /** Undefined: retries are off. */
  readonly retry: RetrySettings | undefined;
  readonly throttle: RetryThrottle;
  readonly attemptObserver: CallAttemptObserver | undefined;
  readonly maxReceiveBytes: number;
  /** Set by close(): calls still in flight end CANCELLED. */
  closed: boolean;
}

/** How a method's call may make more attempts: retries (an idempotent method), or hedges (a read named in `hedging`). */
type AttemptPolicy = "retry" | HedgingSettings;

/** One call: its attempts, its deadline and its cancellation. */
class UnaryCall<Res> implements ConnectionWaiter {
  private finished = false;
  /** Attempts counted by the retry or hedging policy (a transparent retry is not one). */
  private attempts = 0;
  private transparentRetryUsed = false;
  /** Attempts in flight: one, or several while hedged. */
  private live: Attempt[] = [];
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** The next retry's backoff, or the next hedge's delay. */
  private nextAttemptTimer: NodeJS.Timeout | undefined;
  /** A server's pushback stopped further hedges. */
  private hedgingStopped = false;
  /** Hedged: the endpoints of the call's attempts so far, which the next hedge avoids. */
  private readonly tried: Connection[] | undefined;
  /** Hedged: the copies a faster one beat after they had had the whole hedging delay. */
  private outrun: Attempt[] | undefined;
  /** The last hedge that failed with a status worth another: what the call fails with if no other answers. */
  private lastFailure: { connection: Connection | undefined; result: AttemptResult } | undefined;

  constructor(
    private readonly channel: Channel,
    readonly path: string,
    private readonly frame: Buffer,
    private readonly options: TransportCallOptions,
    /** Undefined: one attempt. */
    private readonly policy: AttemptPolicy | undefined,
    private readonly responseType: MessageCodec<Res>,
    private readonly started: number,
    private readonly resolve: (response: Res) => void,
    private readonly reject: (error: ClientError) => void,
  ) {
    this.tried = typeof policy === "object" ? [] : undefined;
  }

  start(): void {
    const remaining = this.options.deadline - Date.now();
    if (remaining <= MAX_TIMER_MS) this.deadlineTimer = setTimeout(exceedDeadline, Math.max(0, remaining), this);
    this.options.cancellation?.addAbortListener(this.onCancel);
    this.send();
    if (typeof this.policy === "object") this.scheduleHedge(this.policy.delayMs);
  }

  private send(): void {
    const connection = this.channel.pool.pick(this.tried);
    if (connection === undefined) this.channel.pool.waitForReady(this);
    else this.sendOn(connection);
  }

  connectionReady(connection: Connection): void {
    if (!this.finished) this.sendOn(connection);
  }

  /** No endpoint can take the call: an attempt that fails at once with UNAVAILABLE (and may be retried). */
  noConnection(error: NoEndpointError): void {
    if (this.finished) return;
    this.attempts++;
    const ended = this.channel.attemptObserver?.attemptStarted({ endpoint: undefined, number: this.attempts, headers: NO_HEADERS });
    this.attemptEnded(undefined, ended, { code: Code.UNAVAILABLE, message: error.message, response: undefined, trailers: undefined, unprocessed: false, committed: false });
  }

  private sendOn(connection: Connection): void {
    const session = connection.session;
    if (session === undefined) return this.send();
    this.attempts++;
    this.tried?.push(connection);
    const tunnel = connection.tunnel?.takes(this.tunneledBytes()) === true ? connection.tunnel : undefined;
    // Through a tunnel, only the metadata travels: the envelope carries the method and the deadline.
    const headers = this.metadataHeaders(tunnel === undefined ? this.protocolHeaders() : {});
    const ended = this.channel.attemptObserver?.attemptStarted({
      endpoint: connection.address,
      number: this.attempts,
      headers: { get: (key) => headers[key], set: (key, value) => void (headers[key] = value) },
      tunneled: tunnel !== undefined,
    });
    connection.activeCalls++;
    const report = (result: AttemptResult): void => {
      connection.activeCalls--;
      const index = this.live.indexOf(attempt);
      if (index >= 0) this.live.splice(index, 1);
      this.channel.pool.record(connection, result.code, this.outrun?.includes(attempt));
      this.attemptEnded(connection, ended, result);
    };
    const attempt: Attempt =
      tunnel === undefined
        ? new UnaryAttempt(session, headers, this.frame, this.channel.maxReceiveBytes, report)
        : tunnel.send(this.path, this.options.deadline, headers, this.frame.subarray(5), report);
    // It reports in a later turn at the earliest, even when it could not start.
    this.live.push(attempt);
  }

  /** What the call would put in a tunnel: its request message and metadata. */
  private tunneledBytes(): number {
    const { metadata } = this.options;
    return this.frame.length - 5 + (metadata === undefined ? 0 : headerListBytes(metadata));
  }

  private protocolHeaders(): Record<string, string> {
    return {
      ":method": "POST",
      ":scheme": this.channel.scheme,
      ":path": this.path,
      ":authority": this.channel.authority,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": formatGrpcTimeout(this.options.deadline - Date.now()),
      "grpc-accept-encoding": ACCEPTED_ENCODINGS,
      "user-agent": USER_AGENT,
    };
  }

  /** `headers` with the call's metadata and attempt count added. */
  private metadataHeaders(headers: Record<string, string>): Record<string, string> {
    if (this.attempts > 1) headers["grpc-previous-rpc-attempts"] = String(this.attempts - 1);
    const metadata = this.options.metadata;
    if (metadata !== undefined) {
      for (const key in metadata) {
        const value = metadata[key] as string | Uint8Array;
        headers[key] = typeof value === "string" ? value : encodeBinaryHeader(value);
      }
    }
    return headers;
  }

  private attemptEnded(connection: Connection | undefined, ended: AttemptEnded | undefined, result: AttemptResult): void {
    ended?.(result.code, result.message);
    if (this.finished) return;
    if (this.channel.closed) return this.fail(Code.CANCELLED, `the channel was closed during the call to ${this.path}`, undefined);
    const { throttle } = this.channel;
    if (result.code === Code.OK) {
      throttle.succeeded();
      let response: Res;
      try {
        response = this.responseType.decode(result.response as Buffer);
      } catch (error) {
        return this.fail(Code.INTERNAL, `cannot parse the response of ${this.path}: ${error instanceof Error ? error.message : String(error)}`, undefined);
      }
      return this.succeed(response);
    }
    // A call the server never saw goes out once more, whatever the method (a transparent retry).
    if (result.unprocessed && !this.transparentRetryUsed) {
      this.transparentRetryUsed = true;
      this.attempts--;
      return this.send();
    }
    const retryableStatus = isRetryableCode(result.code);
    if (retryableStatus) throttle.failed();
    if (retryableStatus && this.mayTryAgain(connection, result)) return;
    this.failWith(connection, result);
  }

  /** Fails the call with a failed attempt's status, message and details. */
  private failWith(connection: Connection | undefined, result: AttemptResult): void {
    const note = connection === undefined ? "" : ` (from ${connection.address})`;
    this.fail(result.code, result.message === "" ? `${this.path} failed${note}` : result.message, statusDetailsOf(result.trailers));
  }

  /**
   * After a failed attempt with a status worth another one: schedules that
   * attempt (a retry after its backoff, or the next hedge now) or, when no
   * hedge may follow, waits for the hedges still in flight. False when the
   * call should fail with this attempt's status.
   */
  private mayTryAgain(connection: Connection | undefined, result: AttemptResult): boolean {
    const { policy } = this;
    const { retry, throttle } = this.channel;
    if (policy === "retry") {
      if (retry === undefined || result.committed || this.attempts >= retry.maxAttempts || !throttle.allowsRetry) return false;
      const delay = retryDelayMs(retry, this.attempts, result.trailers);
      if (delay === undefined || Date.now() + delay >= this.options.deadline) return false;
      this.nextAttemptTimer = setTimeout(() => this.send(), delay);
      return true;
    }
    if (policy === undefined) return false;
    // Hedged (gRFC A6): the next hedge goes out now, or after the server's pushback; a pushback that
    // says stop ends hedging, and the attempts in flight go on.
    this.lastFailure = { connection, result };
    const pushback = pushbackOf(result.trailers);
    if (pushback === "stop") this.hedgingStopped = true;
    const delay = pushback === "stop" ? undefined : (pushback ?? 0);
    if (delay !== undefined && this.mayHedge() && Date.now() + delay < this.options.deadline) {
      this.scheduleHedge(delay);
      return true;
    }
    return this.live.length > 0;
  }

  private mayHedge(): boolean {
    return !this.hedgingStopped && this.attempts < (this.policy as HedgingSettings).maxAttempts && this.channel.throttle.allowsRetry;
  }

  /** The next hedge, `delayMs` from now (replacing one already scheduled). */
  private scheduleHedge(delayMs: number): void {
    clearTimeout(this.nextAttemptTimer);
    this.nextAttemptTimer = setTimeout(sendHedge, delayMs, this);
  }

  /**
   * Sends the next hedge and schedules the one after. When no hedge may go
   * out (the policy, a pushback or the budget says no) and none is in
   * flight, the call fails with the last attempt's status.
   */
  hedge(): void {
    this.nextAttemptTimer = undefined;
    if (this.finished) return;
    if (!this.mayHedge()) {
      if (this.live.length === 0 && this.lastFailure !== undefined) this.failWith(this.lastFailure.connection, this.lastFailure.result);
      return;
    }
    this.send();
    if (this.mayHedge()) this.scheduleHedge((this.policy as HedgingSettings).delayMs);
  }

  private readonly onCancel = (): void => this.giveUp(Code.CANCELLED, `the call to ${this.path} was cancelled`);

  /** The call ends from outside (its deadline, its caller): its attempts in flight end with the same status. */
  giveUp(code: Code, message: string): void {
    if (this.finished) return;
    const attempts = this.live;
    this.live = [];
    this.fail(code, message, undefined);
    for (const attempt of attempts) attempt.abort(code, message);
  }

  private succeed(response: Res): void {
    this.settle(Code.OK);
    this.resolve(response);
  }

  private fail(code: Code, message: string, details: Uint8Array | undefined): void {
    this.settle(code);
    const decoded = details === undefined ? undefined : decodeStatusDetails(details, code);
    this.reject(new ClientError(this.path, code, message, decoded ?? {}));
  }

  /** Ends the call; hedges still in flight lost, and are cancelled. */
  private settle(code: Code): void {
    this.finished = true;
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.nextAttemptTimer);
    this.options.cancellation?.removeAbortListener(this.onCancel);
    this.channel.pool.forget(this);
    this.options.observer?.finished(this.started, code);
    // A copy reports (and leaves `live`) as it is aborted: go over the list as it was.
    const losers = this.live;
    this.live = [];
    if (code === Code.OK && typeof this.policy === "object") {
      const beatenBy = Date.now() - this.policy.delayMs;
      this.outrun = losers.filter((attempt) => attempt.sentAt <= beatenBy);
    }
    for (const attempt of losers) attempt.abort(Code.CANCELLED, "another attempt ended the call first");
  }
}

/** The deadline timer's callback: a module function, so a call makes no closure for it. */
function exceedDeadline(call: Pick<UnaryCall<never>, "giveUp" | "path">): void {
  call.giveUp(Code.DEADLINE_EXCEEDED, `the call to ${call.path} exceeded its deadline`);
}

/** The hedging timer's callback, likewise. */
function sendHedge(call: Pick<UnaryCall<never>, "hedge">): void {
  call.hedge();
}

/** A call refused before it went out: observed as finished, rejected with `code`. */
function refused<Res>(path: string, observer: MethodObserver | undefined, started: number, code: Code, message: string): Promise<Res> {
  observer?.finished(started, code);
  return Promise.reject(new ClientError(path, code, message));
}

/** Why `metadata` cannot be sent, or undefined when it can. */
function metadataProblem(metadata: Metadata): string | undefined {
  for (const key in metadata) {
    if (!VALID_KEY.test(key)) return `metadata key "${key}" is not lower-case letters, digits, "-", "_" or "."`;
    if (PROTOCOL_HEADERS.has(key) || CLIENT_HEADERS.has(key)) return `metadata key "${key}" is reserved by the gRPC protocol`;
    const value = metadata[key];
    if (key.endsWith("-bin") !== (value instanceof Uint8Array)) {
      return key.endsWith("-bin") ? `metadata "${key}" must be bytes (the key ends in -bin)` : `metadata "${key}" must be text (only -bin keys carry bytes)`;
    }
    if (typeof value === "string" && !VALID_TEXT.test(value)) return `metadata "${key}" must be printable ASCII`;
  }
  return undefined;
}

