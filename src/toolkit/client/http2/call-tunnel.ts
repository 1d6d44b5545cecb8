import { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import { OpenRequest, OpenResponse } from "../../../gen/switchyard/tunnel/v1/tunnel.js";
import { Code, isCode } from "../../rpc/code.js";
import { ENVELOPE_BYTES, FrameBatch, MAX_CALLS_HEADER, MAX_RESPONSE_HEADER, TUNNEL_PATH } from "../../wire/call-tunnel.js";
import { MessageReader } from "../../wire/message-reader.js";
import { decodeGrpcMessage, encodeFrame } from "../../wire/protocol.js";
import type { Attempt, AttemptResult } from "./unary-attempt.js";

const { NGHTTP2_CANCEL } = constants;

/**
 * Larger requests (message and metadata) go on a stream of their own: one
 * stream's messages arrive in order, and a big one would hold up the small
 * calls behind it.
 */
const MAX_TUNNELED_REQUEST_BYTES = 64 * 1024;

/** What a tunnel needs to know of its channel. */
export interface TunnelSettings {
  readonly authority: string;
  readonly scheme: "http" | "https";
  readonly userAgent: string;
  readonly maxReceiveBytes: number;
}

/** Told how a tunnel's life goes. */
export interface TunnelListener {
  /** The server accepted the stream: calls may go through. */
  opened(tunnel: CallTunnel): void;
  /** Told once, when the tunnel takes no more calls; `refused` when the server does not offer tunnels. */
  closed(tunnel: CallTunnel, refused: boolean): void;
}

/**
 * The client end of a call tunnel (proto/switchyard/tunnel/v1) on one
 * connection: unary calls travel as messages on one long-lived stream
 * instead of a stream each, which in node:http2 is most of a small call's
 * cost on both ends. Calls go out on it only once the server has accepted
 * the stream; a server without the tunnel answers UNIMPLEMENTED, and the
 * connection then sends every call on a stream of its own. Requests that
 * leave in the same turn share one write.
 */
export class CallTunnel {
  private state: "opening" | "open" | "closed" = "opening";
  private readonly stream: ClientHttp2Stream;
  private readonly calls = new Map<number, TunnelAttempt>();
  private maxCalls = 0;
  private nextId = 0;
  private reader: MessageReader | undefined;
  private readonly outbox: FrameBatch;
  /** Set by end(): no new calls; the stream ends once the last call in flight is answered or cancelled. */
  private ending = false;
  private closeReason = "";
  private reportedClosed = false;
  private readonly maxReceiveBytes: number;

  constructor(
    session: ClientHttp2Session,
    settings: TunnelSettings,
    private readonly listener: TunnelListener,
  ) {
    this.maxReceiveBytes = settings.maxReceiveBytes;
    this.stream = session.request(
      {
        ":method": "POST",
        ":scheme": settings.scheme,
        ":path": TUNNEL_PATH,
        ":authority": settings.authority,
        "content-type": "application/grpc",
        te: "trailers",
        "user-agent": settings.userAgent,
        [MAX_RESPONSE_HEADER]: String(settings.maxReceiveBytes),
      },
      { endStream: false },
    );
    this.outbox = new FrameBatch(this.stream);
    this.stream.on("response", (headers: IncomingHttpHeaders) => {
      const maxCalls = Number(headers[MAX_CALLS_HEADER]);
      if (Number(headers[":status"]) !== 200 || headers["grpc-status"] !== undefined || !(maxCalls > 0)) {
        this.close(true, "the server does not offer call tunnels");
        return;
      }
      // A margin under the server's count: cancellations on their way have not freed its slots yet.
      this.maxCalls = Math.max(1, Math.floor(maxCalls * 0.9));
      this.state = "open";
      const encoding = headers["grpc-encoding"];
      this.reader = new MessageReader(
        settings.maxReceiveBytes + ENVELOPE_BYTES,
        typeof encoding === "string" ? encoding : undefined,
        (frame) => this.received(frame),
        "response",
      );
      listener.opened(this);
    });
    this.stream.on("data", (chunk: Buffer) => {
      if (this.reader !== undefined && !this.reader.push(chunk)) this.close(false, this.reader.error?.message ?? "its stream could not be read");
    });
    // The server ended the tunnel. With OK it answered every call it ran: the calls left were never run.
    this.stream.on("trailers", (trailers: IncomingHttpHeaders) => {
      const message = trailers["grpc-message"];
      const drained = trailers["grpc-status"] === "0";
      this.close(false, `the server ended the tunnel${typeof message === "string" ? `: ${decodeGrpcMessage(message)}` : ""}`, drained);
    });
    this.stream.on("close", () => this.close(this.state === "opening", this.closeReason || "its stream closed"));
    // Set before "close": the connection went down, and why (a keepalive without answer, say).
    this.stream.on("error", (error: Error) => {
      this.closeReason ||= `the connection was lost (${error.message})`;
    });
  }

  /** Whether a call of `bytes` (request message and metadata) can go through the tunnel now. */
  takes(bytes: number): boolean {
    return this.state === "open" && this.calls.size < this.maxCalls && bytes <= MAX_TUNNELED_REQUEST_BYTES;
  }

  /** Sends one call; `done` is told how it ended, in a later turn. */
  send(path: string, deadline: number, metadata: Record<string, string>, message: Buffer, done: (result: AttemptResult) => void): Attempt {
    let id = this.nextId;
    do id = (id + 1) >>> 0 || 1;
    while (this.calls.has(id));
    this.nextId = id;
    const attempt = new TunnelAttempt(this, id, done);
    this.calls.set(id, attempt);
    this.outbox.push(encodeFrame(OpenRequest, { callId: id, method: path, timeoutMs: Math.max(1, Math.ceil(deadline - Date.now())), metadata, message, cancel: false }));
    return attempt;
  }

  /** The caller gave up on call `id`: the server stops its handler. */
  cancel(id: number): void {
    if (!this.calls.delete(id)) return;
    this.outbox.push(encodeFrame(OpenRequest, { callId: id, method: "", timeoutMs: 0, metadata: {}, message: EMPTY, cancel: true }));
    this.endIfDone();
  }

  /** Sends no more calls (the connection is going away): the server answers those in flight, then ends the stream. */
  end(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.ending = true;
    this.endIfDone();
  }

  /** Half-closes once nothing is in flight: until then cancellations must still reach the server. */
  private endIfDone(): void {
    if (!this.ending || this.calls.size > 0 || this.stream.writableEnded) return;
    this.outbox.flush();
    this.stream.end();
  }

  private received(frame: Buffer): void {
    let response: OpenResponse;
    try {
      response = OpenResponse.decode(frame);
    } catch {
      this.close(false, "the server sent a frame that is not a valid switchyard.tunnel.v1.OpenResponse");
      return;
    }
    const attempt = this.calls.get(response.callId);
    if (attempt === undefined) return; // cancelled meanwhile
    this.calls.delete(response.callId);
    let code = isCode(response.code) ? response.code : Code.UNKNOWN;
    let message = code === response.code ? response.statusMessage : `the server sent an invalid status code ${response.code}`;
    if (response.message.length > this.maxReceiveBytes) {
      code = Code.RESOURCE_EXHAUSTED;
      message = `received message larger than max (${response.message.length} vs. ${this.maxReceiveBytes})`;
    }
    attempt.finish({
      code,
      message,
      response: code === Code.OK ? response.message : undefined,
      // Shaped as a stream's trailers, which the retry policy and the status details are read from.
      trailers: { ...response.trailers, "grpc-status": String(code) },
      unprocessed: response.unprocessed,
      committed: false,
    });
    this.endIfDone();
  }

  /**
   * No more calls go out; those in flight fail UNAVAILABLE, marked
   * unprocessed when the server said it never ran them (it drained).
   */
  private close(refused: boolean, reason: string, unprocessed = false): void {
    this.state = "closed";
    const calls = [...this.calls.values()];
    this.calls.clear();
    const message = unprocessed ? `the server closed the call tunnel before it took the call on: ${reason}` : `the call tunnel closed during the call: ${reason}`;
    for (const attempt of calls) attempt.finish({ code: Code.UNAVAILABLE, message, response: undefined, trailers: undefined, unprocessed, committed: false });
    if (!this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
    if (this.reportedClosed) return;
    this.reportedClosed = true;
    this.listener.closed(this, refused);
  }
}

const EMPTY = Buffer.alloc(0);

/** One call sent through a tunnel. */
class TunnelAttempt implements Attempt {
  readonly sentAt = Date.now();
  private ended = false;

  constructor(
    private readonly tunnel: CallTunnel,
    private readonly id: number,
    private readonly done: (result: AttemptResult) => void,
  ) {}

  abort(code: Code, message: string): void {
    if (this.ended) return;
    this.finish({ code, message, response: undefined, trailers: undefined, unprocessed: false, committed: false });
    this.tunnel.cancel(this.id);
  }

  finish(result: AttemptResult): void {
    if (this.ended) return;
    this.ended = true;
    this.done(result);
  }
}
