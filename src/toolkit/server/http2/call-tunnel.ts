import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { OpenRequest, OpenResponse } from "../../../gen/switchyard/tunnel/v1/tunnel.js";
import { Code } from "../../rpc/code.js";
import { RpcError } from "../../rpc/rpc-error.js";
import { ENVELOPE_BYTES, FrameBatch, headerListBytes, MAX_CALLS_HEADER, MAX_RESPONSE_HEADER } from "../../wire/call-tunnel.js";
import { MessageReader } from "../../wire/message-reader.js";
import { encodeFrame, encodeMessage, MAX_TIMER_MS } from "../../wire/protocol.js";
import { type CapEntry, cappedTimeout, maxDeadlineExceeded } from "../deadline-cap.js";
import type { CallAnswer, Route } from "../dispatcher.js";
import { engineError, errorHeaders, errorTrailers, RESPONSE_HEADERS, WITH_TRAILERS } from "./response.js";
import { callerGone, type CallEnvironment, type ConnectionFacts, StreamCallContext } from "./unary-call.js";

/**
 * Calls one tunnel may carry at once, told to the client. Well above a
 * connection's stream limit: a tunneled call costs a fraction of a stream,
 * and load shedding bounds what the whole server takes on.
 */
const MAX_CALLS = 1024;
const OK_TRAILERS: OutgoingHttpHeaders = { "grpc-status": "0" };

/**
 * The server end of one call tunnel (proto/switchyard/tunnel/v1): many
 * unary calls carried on one stream, each run through the dispatcher as a
 * call on a stream of its own would be (its deadline, under the server's
 * cap; its metadata; the connection's peer and identity; cancellation),
 * answered once. Answers that are ready in the same turn leave in one write.
 */
export class ServedTunnel {
  private readonly calls = new Map<number, TunneledCall>();
  private readonly reader: MessageReader;
  private readonly connection: ConnectionFacts;
  private readonly outbox: FrameBatch;
  /** Largest response message the client accepts. */
  private readonly maxResponseBytes: number;
  private draining = false;
  private ended = false;
  private trailers: OutgoingHttpHeaders = OK_TRAILERS;

  constructor(
    private readonly stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    readonly environment: CallEnvironment,
    /** A call's metadata may be this large, counted as HTTP/2 counts a header list: as on a stream of its own. */
    private readonly maxMetadataBytes: number,
    private readonly onEnd: (tunnel: ServedTunnel) => void,
  ) {
    this.connection = environment.connectionOf(stream);
    this.outbox = new FrameBatch(stream);
    const clientLimit = Number(headers[MAX_RESPONSE_HEADER]);
    this.maxResponseBytes = clientLimit > 0 ? clientLimit : Number.POSITIVE_INFINITY;
    const encoding = headers["grpc-encoding"];
    this.reader = new MessageReader(environment.maxReceiveMessageBytes + ENVELOPE_BYTES, typeof encoding === "string" ? encoding : undefined, (frame) =>
      this.received(frame),
    );
    stream.respond({ ...RESPONSE_HEADERS, [MAX_CALLS_HEADER]: String(MAX_CALLS) }, WITH_TRAILERS);
    stream.once("wantTrailers", () => this.sendTrailers());
    stream.on("data", (chunk: Buffer) => {
      // Once ended, what the client still sends is dropped: the end promised those calls were not run.
      if (!this.ended && !this.reader.push(chunk)) this.broken(this.reader.error ?? engineError(Code.INTERNAL, "the tunnel's body could not be read"));
    });
    // The client sends no more calls: the stream ends once those in flight are answered.
    stream.on("end", () => this.drain());
    stream.on("close", () => this.closed());
    stream.on("error", () => {});
  }

  /**
   * Answers the calls in flight, refuses new ones unrun (clients send them
   * elsewhere), then ends the stream with OK. Ending with OK promises the
   * client that every call it sent and got no answer to was never run.
   */
  drain(): void {
    this.draining = true;
    this.endIfDrained();
  }

  /** A call ended: its answer goes out with the others of this turn. */
  answer(call: TunneledCall, response: OpenResponse): void {
    if (this.calls.get(call.id) === call) this.calls.delete(call.id);
    if (response.code === Code.OK && response.message.length > this.maxResponseBytes) {
      const error = engineError(
        Code.RESOURCE_EXHAUSTED,
        `the response message is ${response.message.length} bytes, larger than the caller accepts (${this.maxResponseBytes} bytes)`,
      );
      response = failure(call.id, error, false);
    }
    this.queue(response);
    this.endIfDrained();
  }

  private received(frame: Buffer): void {
    if (this.ended) return; // a frame after a broken one, in the same chunk
    let request: OpenRequest;
    try {
      request = OpenRequest.decode(frame);
    } catch (cause) {
      this.broken(new RpcError(Code.INTERNAL, "a tunnel frame is not a valid switchyard.tunnel.v1.OpenRequest", { reason: "PROTOCOL_VIOLATION", cause }));
      return;
    }
    const { callId } = request;
    const running = this.calls.get(callId);
    if (request.cancel) {
      if (running === undefined) return; // it was answered already
      this.calls.delete(callId);
      running.cancel();
      this.endIfDrained();
      return;
    }
    if (running !== undefined) {
      this.broken(engineError(Code.INTERNAL, `the client reused call id ${callId} while that call was in flight`, "PROTOCOL_VIOLATION"));
      return;
    }
    const route = this.environment.dispatcher.route(request.method);
    const refusal = this.refusal(request, route);
    if (refusal !== undefined) {
      this.queue(failure(callId, refusal.error, refusal.unprocessed));
      return;
    }
    const call = new TunneledCall(this, callId, route as Route, request, this.connection);
    this.calls.set(callId, call);
    call.run(request.message);
  }

  /** Why a call is answered at once, without running; undefined when it runs. */
  private refusal(request: OpenRequest, route: Route | undefined): { error: RpcError; unprocessed: boolean } | undefined {
    if (this.draining) {
      return { error: engineError(Code.UNAVAILABLE, "the server is shutting down; retry on another instance"), unprocessed: true };
    }
    if (this.calls.size >= MAX_CALLS) {
      return { error: engineError(Code.RESOURCE_EXHAUSTED, `the tunnel already carries ${MAX_CALLS} calls, its limit`), unprocessed: true };
    }
    if (route === undefined) {
      return { error: engineError(Code.UNIMPLEMENTED, `the method ${request.method} is not implemented by this server`, "UNKNOWN_METHOD"), unprocessed: false };
    }
    const limit = this.environment.maxReceiveMessageBytes;
    if (request.message.length > limit) {
      const message = `the request message is ${request.message.length} bytes, larger than this server accepts (${limit} bytes)`;
      return { error: engineError(Code.RESOURCE_EXHAUSTED, message), unprocessed: false };
    }
    const metadataBytes = headerListBytes(request.metadata);
    if (metadataBytes > this.maxMetadataBytes) {
      const message = `the request metadata is ${metadataBytes} bytes, larger than this server accepts (${this.maxMetadataBytes} bytes)`;
      return { error: engineError(Code.RESOURCE_EXHAUSTED, message), unprocessed: false };
    }
    return undefined;
  }

  private queue(response: OpenResponse): void {
    if (!this.ended) this.outbox.push(encodeFrame(OpenResponse, response));
  }

  private endIfDrained(): void {
    if (this.draining && this.calls.size === 0) this.end();
  }

  /** Ends the stream, with OK unless `error` says why not. */
  private end(error?: RpcError): void {
    if (this.ended) return;
    this.outbox.flush();
    this.ended = true;
    if (error !== undefined) this.trailers = errorHeaders(error);
    if (!this.stream.destroyed) this.stream.end();
  }

  private sendTrailers(): void {
    try {
      this.stream.sendTrailers(this.trailers);
    } catch {
      this.stream.destroy();
    }
  }

  /** The client broke the tunnel's protocol: its calls are cancelled, and the stream ends with the error. */
  private broken(error: RpcError): void {
    if (this.ended) return;
    this.cancelAll();
    this.end(error);
  }

  /** The stream is gone (the client reset it, the connection dropped, the drain timed out): every call in flight is cancelled. */
  private closed(): void {
    this.ended = true;
    this.cancelAll();
    this.onEnd(this);
  }

  private cancelAll(): void {
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) call.cancel();
  }
}

/** An answer with `error`'s status and details. */
function failure(callId: number, error: RpcError, unprocessed: boolean): OpenResponse {
  return { callId, code: error.code, statusMessage: error.message, message: EMPTY, trailers: errorTrailers(error), unprocessed };
}

const EMPTY = Buffer.alloc(0);

/** One call carried by a tunnel. */
class TunneledCall implements CallAnswer {
  private readonly context: StreamCallContext;
  private timer: NodeJS.Timeout | undefined;
  private capMs: number | undefined;
  private capEntry: CapEntry | undefined;
  private done = false;

  constructor(
    private readonly tunnel: ServedTunnel,
    readonly id: number,
    private readonly route: Route,
    request: OpenRequest,
    connection: ConnectionFacts,
  ) {
    const { environment } = tunnel;
    const { timeoutMs, capped } = cappedTimeout(request.timeoutMs === 0 ? undefined : request.timeoutMs, environment.maxDeadlineMs);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    // The metadata map is shaped as request headers would be: the stream's context reads it the same way.
    this.context = new StreamCallContext(request.metadata, request.method, deadline, connection);
    if (capped && deadline !== undefined) {
      this.capMs = timeoutMs;
      this.capEntry = environment.cappedCalls?.add(this, deadline);
    } else if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      this.timer = setTimeout(expire, timeoutMs, this);
    }
  }

  run(message: Buffer): void {
    const { method, service } = this.route;
    let request: unknown;
    try {
      request = method.requestType.decode(message);
    } catch (cause) {
      this.fail(new RpcError(Code.INVALID_ARGUMENT, `the request body is not a valid ${service.name}.${method.name} request`, { reason: "MALFORMED_REQUEST", cause }));
      return;
    }
    this.tunnel.environment.dispatcher.serve(this.route, request, this.context, this);
  }

  /** The client stopped waiting, or the tunnel is gone: the handler learns it; nobody hears an answer. */
  cancel(): void {
    if (this.done) return;
    this.finish();
    this.context.abort(callerGone(this.context.deadline));
  }

  /** The deadline (or the server's cap) passed: answer DEADLINE_EXCEEDED and stop the handler. */
  expired(): void {
    if (this.done) return;
    this.timer = undefined;
    const error = this.capMs === undefined ? new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded") : maxDeadlineExceeded(this.capMs);
    this.fail(error);
    this.context.abort(error);
  }

  /** The handler's response: sends it, unless the call already ended. */
  succeed(response: unknown): void {
    if (this.done) return;
    let message: Buffer;
    try {
      message = encodeMessage(this.route.method.responseType, response);
    } catch (cause) {
      this.fail(new RpcError(Code.INTERNAL, "internal error", { cause }));
      return;
    }
    this.finish();
    this.tunnel.answer(this, { callId: this.id, code: Code.OK, statusMessage: "", message, trailers: {}, unprocessed: false });
  }

  /** Answers `error`, unless the call already ended. */
  fail(error: RpcError): void {
    if (this.done) return;
    this.finish();
    this.tunnel.answer(this, failure(this.id, error, false));
  }

  private finish(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.capEntry !== undefined) this.tunnel.environment.cappedCalls?.delete(this.capEntry);
  }
}

function expire(call: TunneledCall): void {
  call.expired();
}
