import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { CallContext } from "../../rpc/call-context.js";
import { CancellationSource } from "../../rpc/cancellation.js";
import type { Metadata } from "../../rpc/metadata.js";
import { Code } from "../../rpc/code.js";
import { RpcError } from "../../rpc/rpc-error.js";
import { type CapEntry, type CappedCalls, cappedTimeout, maxDeadlineExceeded } from "../deadline-cap.js";
import type { CallAnswer, Dispatcher, Route } from "../dispatcher.js";
import { MessageReader } from "../../wire/message-reader.js";
import { encodeFrame, MAX_TIMER_MS, metadataFromHeaders, parseGrpcTimeout } from "../../wire/protocol.js";
import { engineError, RESPONSE_HEADERS, sendError, sendOkTrailers, WITH_TRAILERS } from "./response.js";

/** What every call on one server shares. */
export interface CallEnvironment {
  readonly dispatcher: Dispatcher;
  readonly maxReceiveMessageBytes: number;
  /** Longest a call may run; calls without a deadline or with a later one get this. Undefined: no cap. */
  readonly maxDeadlineMs: number | undefined;
  /** Ends the calls that run under that cap; present with it. */
  readonly cappedCalls: CappedCalls | undefined;
  /** What is known of the connection a stream belongs to (worked out once per connection). */
  connectionOf(stream: ServerHttp2Stream): ConnectionFacts;
}

/** The caller's address and verified identity, the same for every call on a connection. */
export interface ConnectionFacts {
  /** e.g. `ipv4:127.0.0.1:51234` */
  readonly peer: string;
  /** From a verified client certificate (mTLS); undefined otherwise. */
  readonly peerIdentity: string | undefined;
}

const CALL: unique symbol = Symbol("switchyard.unaryCall");
type StreamWithCall = ServerHttp2Stream & { [CALL]?: UnaryCall };

const enum State {
  Reading,
  Running,
  Done,
}

/**
 * One unary call of a hosted service, served straight from its HTTP/2 stream:
 * reads the request message, decodes it, runs it through the dispatcher and
 * answers with headers, one message and the trailers, or with a trailers-only
 * error.
 */
export class UnaryCall implements CallAnswer {
  /** The handler's CallContext; also what aborts it. */
  readonly context: StreamCallContext;
  private state = State.Reading;
  private request: Buffer | undefined;
  private messages = 0;
  private reader: MessageReader | undefined;
  private timer: NodeJS.Timeout | undefined;
  private capEntry: CapEntry | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly route: Route,
    private readonly environment: CallEnvironment,
    path: string,
    deadline: number | undefined,
    /** Set when the deadline is the server's cap rather than the caller's. */
    private readonly capMs: number | undefined,
  ) {
    const connection = environment.connectionOf(stream);
    this.context = new StreamCallContext(headers, path, deadline, connection);
  }

  /** Starts serving `route` on `stream`; answers protocol errors itself. */
  static start(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, route: Route, environment: CallEnvironment, path: string): void {
    const timeoutHeader = headers["grpc-timeout"];
    let clientTimeoutMs: number | undefined;
    if (timeoutHeader !== undefined) {
      clientTimeoutMs = parseGrpcTimeout(timeoutHeader as string);
      if (clientTimeoutMs === undefined) {
        sendError(stream, engineError(Code.INTERNAL, `malformed grpc-timeout "${String(timeoutHeader)}"`, "MALFORMED_TIMEOUT"));
        return;
      }
    }
    const { timeoutMs, capped } = cappedTimeout(clientTimeoutMs, environment.maxDeadlineMs);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const call = new UnaryCall(stream, headers, route, environment, path, deadline, capped ? timeoutMs : undefined);
    (stream as StreamWithCall)[CALL] = call;
    stream.on("data", onData);
    stream.on("end", onEnd);
    // `aborted`, not `close`: node:http2 emits it only when the stream closes
    // before the response is complete, so a call that ends well runs no listener for it.
    stream.on("aborted", onAborted);
    stream.on("error", ignore);
    if (capped && deadline !== undefined) {
      call.capEntry = environment.cappedCalls?.add(call, deadline);
    } else if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      call.timer = setTimeout(onDeadline, timeoutMs, call);
    }
  }

  /** One DATA chunk of the request. */
  data(chunk: Buffer): void {
    if (this.state !== State.Reading) return;
    // The usual case: the whole request message in one chunk, uncompressed.
    if (
      this.reader === undefined &&
      this.messages === 0 &&
      chunk.length >= 5 &&
      chunk[0] === 0 &&
      chunk.readUInt32BE(1) === chunk.length - 5 &&
      chunk.length - 5 <= this.environment.maxReceiveMessageBytes
    ) {
      this.request = chunk.subarray(5);
      this.messages = 1;
      return;
    }
    this.reader ??= new MessageReader(
      this.environment.maxReceiveMessageBytes,
      this.headers["grpc-encoding"] as string | undefined,
      (message) => {
        if (++this.messages === 1) this.request = message;
      },
    );
    if (!this.reader.push(chunk)) this.fail(this.reader.error as RpcError);
  }

  /** The client half-closed: the request is complete. */
  end(): void {
    if (this.state !== State.Reading) return;
    if (this.reader !== undefined && !this.reader.end()) return this.fail(this.reader.error as RpcError);
    if (this.messages !== 1) {
      return this.fail(
        engineError(
          Code.INTERNAL,
          this.messages === 0 ? "a unary call needs one request message; none was sent" : "a unary call takes one request message; several were sent",
          "PROTOCOL_VIOLATION",
        ),
      );
    }
    let request: unknown;
    try {
      request = this.route.method.requestType.decode(this.request as Buffer);
    } catch (cause) {
      return this.fail(
        new RpcError(Code.INVALID_ARGUMENT, `the request body is not a valid ${this.route.service.name}.${this.route.method.name} request`, {
          reason: "MALFORMED_REQUEST",
          cause,
        }),
      );
    }
    this.state = State.Running;
    this.request = undefined;
    this.environment.dispatcher.serve(this.route, request, this.context, this);
  }

  /**
   * The stream closed before the response was complete: the client cancelled
   * the call (RST_STREAM or connection loss). Past the deadline, that is the
   * client's own deadline timer racing ours, and the handler learns the cause.
   */
  aborted(): void {
    if (this.state === State.Done) return;
    this.finish();
    this.context.abort(callerGone(this.context.deadline));
  }

  /** The deadline passed: answer DEADLINE_EXCEEDED and tell the handler to stop. */
  expired(): void {
    if (this.state === State.Done) return;
    this.timer = undefined;
    const error = this.capMs === undefined ? new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded") : maxDeadlineExceeded(this.capMs);
    this.fail(error);
    this.context.abort(error);
  }

  /** The handler's response: sends it, unless the call already ended. */
  succeed(response: unknown): void {
    if (this.state === State.Done) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(this.route.method.responseType, response);
    } catch (cause) {
      return this.fail(new RpcError(Code.INTERNAL, "internal error", { cause }));
    }
    this.finish();
    const stream = this.stream;
    if (stream.destroyed) return;
    try {
      stream.respond(RESPONSE_HEADERS, WITH_TRAILERS);
      // `on`, not `once`: the event comes once per stream anyway, and `once` wraps the listener anew for each call.
      stream.on("wantTrailers", sendOkTrailers);
      stream.end(frame);
    } catch {
      // The stream closed under us (the client reset it): nobody is left to answer.
      stream.destroy();
    }
  }

  /** Answers `error`, unless the call already ended. */
  fail(error: RpcError): void {
    if (this.state === State.Done) return;
    this.finish();
    sendError(this.stream, error);
  }

  private finish(): void {
    this.state = State.Done;
    // Events after the end are ignored, and the stream, which node:http2 may
    // keep a while after it closes, holds the call no longer.
    (this.stream as StreamWithCall)[CALL] = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.capEntry !== undefined) this.environment.cappedCalls?.delete(this.capEntry);
  }
}

function onData(this: StreamWithCall, chunk: Buffer): void {
  this[CALL]?.data(chunk);
}

function onEnd(this: StreamWithCall): void {
  this[CALL]?.end();
}

function onAborted(this: StreamWithCall): void {
  this[CALL]?.aborted();
}

function onDeadline(call: UnaryCall): void {
  call.expired();
}

function ignore(): void {}

/**
 * Why a handler stops when its caller went away: past the deadline, that is
 * the caller's own deadline timer racing ours; otherwise a cancellation.
 */
export function callerGone(deadline: number | undefined): RpcError {
  return deadline !== undefined && Date.now() >= deadline
    ? new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded")
    : new RpcError(Code.CANCELLED, "the caller cancelled the call");
}

/**
 * The context of a call served from an HTTP/2 stream. The abort signal and
 * the metadata are made on first use: most calls never read them, and an
 * AbortController costs more than the rest of the context together. A class,
 * not an object literal with getters, which V8 builds ten times slower.
 */
export class StreamCallContext extends CancellationSource implements CallContext {
  readonly peer: string;
  readonly peerIdentity: string | undefined;
  private converted: Metadata | undefined;

  constructor(
    private readonly headers: IncomingHttpHeaders,
    readonly method: string,
    readonly deadline: number | undefined,
    connection: ConnectionFacts,
  ) {
    super();
    this.peer = connection.peer;
    this.peerIdentity = connection.peerIdentity;
  }

  get metadata(): Metadata {
    this.converted ??= metadataFromHeaders(this.headers);
    return this.converted;
  }

  /** Straight from the headers: the tracing interceptor reads it for every call, and needs no other metadata. */
  get traceParent(): string | undefined {
    const value = this.headers["traceparent"];
    return typeof value === "string" ? value : undefined;
  }

  get traceState(): string | undefined {
    const value = this.headers["tracestate"];
    return Array.isArray(value) ? value.join(",") : value;
  }
}
