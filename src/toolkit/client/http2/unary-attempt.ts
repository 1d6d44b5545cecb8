import { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";
import { Code, isCode } from "../../rpc/code.js";
import { STATUS_DETAILS_KEY } from "../../rpc/status-details.js";
import { MessageReader } from "../../wire/message-reader.js";
import { codeOfHttpStatus, decodeGrpcMessage } from "../../wire/protocol.js";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY, NGHTTP2_NO_ERROR, NGHTTP2_DEFAULT_WEIGHT } =
  constants;

/**
 * Every priority option given, so that request() copies them rather than
 * adding three properties to its copy of the options: that took about 4 % of
 * a busy client's CPU.
 */
const REQUEST_OPTIONS = { endStream: false, waitForTrailers: false, weight: NGHTTP2_DEFAULT_WEIGHT, parent: 0, exclusive: false } as const;

/** How one attempt ended. */
export interface AttemptResult {
  readonly code: Code;
  readonly message: string;
  /** The response message, when the code is OK. */
  readonly response: Buffer | undefined;
  /** The trailers (or the headers of a trailers-only response), when the server sent a status. */
  readonly trailers: IncomingHttpHeaders | undefined;
  /** The server never processed the call (the stream was refused, or never left): it is safe to send again, whatever the method. */
  readonly unprocessed: boolean;
  /** Response headers came back before the status: the server took the call on, so it is not retried (gRFC A6). */
  readonly committed: boolean;
}

/** One attempt in flight, on a stream of its own or through a call tunnel. */
export interface Attempt {
  /** When it was sent (epoch ms): a hedged call judges its slow copies by it. */
  readonly sentAt: number;
  /** Gives the attempt up with `code` (the deadline passed, the caller cancelled); the server is told. */
  abort(code: Code, message: string): void;
}

/** The `grpc-status-details-bin` trailer, base64 (padded or not), as bytes. */
export function statusDetailsOf(trailers: IncomingHttpHeaders | undefined): Uint8Array | undefined {
  const value = trailers?.[STATUS_DETAILS_KEY];
  return typeof value === "string" ? new Uint8Array(Buffer.from(value, "base64")) : undefined;
}

/**
 * One unary call on one HTTP/2 stream: sends the request headers and the
 * framed message, reads the response headers, exactly one message and the
 * status trailers (or a trailers-only response), and reports once through
 * `done`. Everything that is not a well-formed gRPC answer maps to the status
 * the gRPC spec gives it (HTTP status, content type, RST_STREAM codes, a body
 * cut inside a message, a second message).
 */
export class UnaryAttempt implements Attempt {
  private stream: ClientHttp2Stream | undefined;
  private ended = false;
  readonly sentAt = Date.now();
  private responseHeaders: IncomingHttpHeaders | undefined;
  private trailers: IncomingHttpHeaders | undefined;
  private reader: MessageReader | undefined;
  private message: Buffer | undefined;
  /** A status the client decided on while reading (a protocol violation); wins over what the server says next. */
  private failure: { code: Code; message: string } | undefined;
  private streamError: NodeJS.ErrnoException | undefined;

  constructor(
    private readonly session: ClientHttp2Session,
    headers: OutgoingHttpHeaders,
    frame: Buffer,
    private readonly maxReceiveBytes: number,
    private readonly done: (result: AttemptResult) => void,
  ) {
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, REQUEST_OPTIONS);
    } catch (error) {
      // The session went away between the pick and now (GOAWAY, closed): the server never saw the call.
      const reason = error instanceof Error ? error.message : String(error);
      queueMicrotask(() => this.finish(Code.UNAVAILABLE, `the connection could not take the call: ${reason}`, true));
      return;
    }
    this.stream = stream;
    stream.on("response", this.onResponse);
    stream.on("data", this.onData);
    stream.on("trailers", this.onTrailers);
    stream.on("error", this.onError);
    stream.on("close", this.onClose);
    stream.end(frame);
  }

  /** Gives the attempt up with `code` (the deadline passed, the caller cancelled): the server sees RST_STREAM CANCEL. */
  abort(code: Code, message: string): void {
    if (this.ended) return;
    this.finish(code, message, false);
    this.stream?.close(NGHTTP2_CANCEL);
  }

  private readonly onResponse = (headers: IncomingHttpHeaders): void => {
    this.responseHeaders = headers;
    if (headers["grpc-status"] !== undefined) return; // trailers-only: the status is read on close
    // A number at run time, whatever @types/node says.
    const status = Number(headers[":status"]);
    if (status !== 200) {
      this.fail(codeOfHttpStatus(status), `the server answered HTTP ${status}, not a gRPC response`);
      return;
    }
    const contentType = headers["content-type"];
    if (contentType === undefined || !contentType.startsWith("application/grpc")) {
      this.fail(Code.UNKNOWN, `the server answered with content-type ${contentType ?? "(none)"}, not application/grpc`);
      return;
    }
    const encoding = headers["grpc-encoding"];
    this.reader = new MessageReader(this.maxReceiveBytes, typeof encoding === "string" ? encoding : undefined, this.onMessage, "response");
  };

  private readonly onData = (chunk: Buffer): void => {
    const reader = this.reader;
    if (reader === undefined) {
      if (this.failure === undefined) this.fail(Code.INTERNAL, "the server sent data before its response headers");
      return;
    }
    if (!reader.push(chunk)) this.failReader(reader);
  };

  private readonly onMessage = (message: Buffer): void => {
    if (this.message !== undefined) {
      this.fail(Code.INTERNAL, "the server sent more than one response message to a unary call");
      return;
    }
    this.message = message;
  };

  private readonly onTrailers = (trailers: IncomingHttpHeaders): void => {
    this.trailers = trailers;
  };

  private readonly onError = (error: NodeJS.ErrnoException): void => {
    this.streamError = error;
  };

  private readonly onClose = (): void => {
    if (this.ended) return;
    if (this.failure !== undefined) return this.finish(this.failure.code, this.failure.message, false);
    const trailers = this.trailers ?? (this.responseHeaders?.["grpc-status"] !== undefined ? this.responseHeaders : undefined);
    if (trailers === undefined) return this.closedWithoutStatus();
    if (this.reader !== undefined && !this.reader.end()) return this.failReader(this.reader);
    const raw = trailers["grpc-status"];
    const number = Number(raw);
    const code = isCode(number) && raw !== "" ? number : Code.UNKNOWN;
    const sent = trailers["grpc-message"];
    let message = typeof sent === "string" ? decodeGrpcMessage(sent) : "";
    if (code !== number) message = `the server sent an invalid grpc-status ${String(raw)}`;
    if (code === Code.OK && this.message === undefined) {
      return this.finish(Code.INTERNAL, "the server ended a unary call with OK but sent no response message", false);
    }
    this.trailers = trailers;
    this.finish(code, message, false);
  };

  /** The stream closed with no status: a reset, or the connection went down. */
  private closedWithoutStatus(): void {
    const rstCode = this.stream?.rstCode;
    const error = this.streamError;
    if (rstCode === NGHTTP2_REFUSED_STREAM) return this.finish(Code.UNAVAILABLE, "the server refused the stream", true);
    if (error?.code === "ERR_HTTP2_GOAWAY_SESSION" || error?.code === "ERR_HTTP2_INVALID_SESSION") {
      return this.finish(Code.UNAVAILABLE, "the connection went away before the call was sent", true);
    }
    if (error?.code === "ERR_HTTP2_SESSION_ERROR" || error?.code === "ERR_HTTP2_STREAM_CANCEL" || this.session.destroyed) {
      return this.finish(Code.UNAVAILABLE, `the connection was lost during the call${error === undefined ? "" : ` (${error.message})`}`, false);
    }
    switch (rstCode) {
      case NGHTTP2_CANCEL:
        return this.finish(Code.CANCELLED, "the server cancelled the call (RST_STREAM CANCEL)", false);
      case NGHTTP2_ENHANCE_YOUR_CALM:
        return this.finish(Code.RESOURCE_EXHAUSTED, "the server reset the call: too much load (RST_STREAM ENHANCE_YOUR_CALM)", false);
      case NGHTTP2_INADEQUATE_SECURITY:
        return this.finish(Code.PERMISSION_DENIED, "the server reset the call: inadequate security (RST_STREAM INADEQUATE_SECURITY)", false);
      case NGHTTP2_NO_ERROR:
      case undefined:
        return this.finish(Code.INTERNAL, "the server ended the stream without a gRPC status", false);
      default:
        return this.finish(Code.INTERNAL, `the server reset the call (RST_STREAM code ${rstCode})`, false);
    }
  }

  /** A protocol violation seen while reading: stop the stream and report it (on close, or now if it already closed). */
  private fail(code: Code, message: string): void {
    this.failure ??= { code, message };
    if (this.stream !== undefined && !this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
  }

  private failReader(reader: MessageReader): void {
    const error = reader.error;
    const code = error?.code ?? Code.INTERNAL;
    this.fail(code, error?.message ?? "the response body could not be read");
    if (this.stream?.closed === true) this.finish(this.failure?.code ?? code, this.failure?.message ?? "", false);
  }

  private finish(code: Code, message: string, unprocessed: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.done({
      code,
      message,
      response: code === Code.OK ? this.message : undefined,
      trailers: this.trailers,
      unprocessed,
      committed: this.responseHeaders !== undefined && this.responseHeaders["grpc-status"] === undefined,
    });
  }
}
