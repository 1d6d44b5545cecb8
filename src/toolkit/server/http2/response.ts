import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { Code } from "../../rpc/code.js";
import { RpcError } from "../../rpc/rpc-error.js";
import { encodeStatusDetails, STATUS_DETAILS_KEY } from "../../rpc/status-details.js";
import { ProtocolError } from "../../wire/message-reader.js";
import { encodeBinaryHeader, encodeGrpcMessage } from "../../wire/protocol.js";

const { NGHTTP2_NO_ERROR } = constants;

/** Response headers of every call that sends messages. */
// Plain (not frozen) objects: node:http2 copies headers with for-in, which is
// several times slower on a frozen object.
export const RESPONSE_HEADERS: OutgoingHttpHeaders = { ":status": 200, "content-type": "application/grpc" };
const OK_TRAILERS: OutgoingHttpHeaders = { "grpc-status": "0" };
// `respond()`'s options, shared, as node:http2 copies them. No Date header:
// gRPC has no use for it (grpc-go sends none), and node:http2 would add,
// encode and send one on every response.
/** When trailers follow the message. */
export const WITH_TRAILERS = { waitForTrailers: true, sendDate: false } as const;
/** When the headers are the whole response. */
const HEADERS_ONLY = { endStream: true, sendDate: false } as const;

/** `wantTrailers` listener of a call that ends OK; `this` is the stream. */
export function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

/** The status headers (or trailers) for an error, with google.rpc.Status details. */
export function statusHeaders(code: Code, message: string, extra?: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { "grpc-status": String(code) };
  if (message !== "") headers["grpc-message"] = encodeGrpcMessage(message);
  if (extra !== undefined) Object.assign(headers, extra);
  return headers;
}

/** Status headers for an RpcError: code, message, details and any protocol headers. */
export function errorHeaders(error: RpcError): OutgoingHttpHeaders {
  return statusHeaders(error.code, error.message, errorTrailers(error));
}

/** What an error's status headers carry besides grpc-status and grpc-message: the details and any protocol headers. */
export function errorTrailers(error: RpcError): Record<string, string> {
  const trailers: Record<string, string> = { [STATUS_DETAILS_KEY]: encodeBinaryHeader(encodeStatusDetails(error)) };
  if (error instanceof ProtocolError) Object.assign(trailers, error.headers);
  return trailers;
}

/**
 * A trailers-only response: HTTP 200, content-type and the status in one
 * HEADERS frame with END_STREAM. Used for every error raised before any
 * message was sent.
 */
export function sendTrailersOnly(stream: ServerHttp2Stream, status: OutgoingHttpHeaders): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond({ ":status": 200, "content-type": "application/grpc", ...status }, HEADERS_ONLY);
    stopReading(stream);
  } catch {
    // The stream closed under us (the client reset it): nobody is left to answer.
    stream.destroy();
  }
}

/**
 * After a complete response, when the client has not finished sending:
 * RST_STREAM with NO_ERROR once the response is out, which asks it to stop
 * without error (RFC 9113 §8.1, as grpc-go does) and frees the stream now
 * rather than when the client is done.
 */
export function stopReading(stream: ServerHttp2Stream): void {
  if (!stream.readableEnded && !stream.endAfterHeaders) stream.close(NGHTTP2_NO_ERROR);
}

/** Answers an error as a trailers-only response. */
export function sendError(stream: ServerHttp2Stream, error: RpcError): void {
  sendTrailersOnly(stream, errorHeaders(error));
}

/** A plain HTTP error for requests that are not gRPC at all (wrong method or content type). */
export function sendHttpError(stream: ServerHttp2Stream, status: number, headers: OutgoingHttpHeaders = {}): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond({ ":status": status, ...headers }, HEADERS_ONLY);
    stopReading(stream);
  } catch {
    stream.destroy();
  }
}

/** An RpcError with status details, for errors the engine raises itself. */
export function engineError(code: Code, message: string, reason?: string): RpcError {
  return new RpcError(code, message, reason === undefined ? {} : { reason });
}
