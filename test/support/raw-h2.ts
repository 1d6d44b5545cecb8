// gRPC over a bare node:http2 client session, for the tests that must send
// what no well-behaved gRPC client would: compressed bombs, messages larger
// than they claim, streams cancelled as soon as they open.
import http2 from "node:http2";

/** What came back on one stream. */
export interface RawResponse {
  /** The HTTP status (200 for any gRPC answer). */
  readonly httpStatus: number | undefined;
  /** grpc-status from the trailers (or a trailers-only response); undefined when the stream was reset. */
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string | undefined;
  /** RST_STREAM code, when the server reset the stream instead of answering. */
  readonly rstCode: number | undefined;
  readonly body: Buffer;
}

/** A gRPC length-prefixed message: flag byte (1 = compressed), 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array, compressed = false): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(compressed ? 1 : 0, 0);
  frame.writeUInt32BE(message.length, 1);
  Buffer.from(message.buffer, message.byteOffset, message.byteLength).copy(frame, 5);
  return frame;
}

/**
 * Opens a plaintext HTTP/2 session (h2c, prior knowledge) to 127.0.0.1:port
 * and waits for the server's SETTINGS (until then nghttp2 assumes defaults).
 * Errors are swallowed: tests read outcomes.
 */
export async function connectH2(port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    session.once("remoteSettings", () => resolve());
    session.once("error", reject);
    session.once("close", () => reject(new Error(`the HTTP/2 connection to port ${port} closed before the server's SETTINGS`)));
  });
  return session;
}

/** The request headers of a gRPC call to `path`. */
export function grpcHeaders(path: string, extra: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders {
  return {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    ...extra,
  };
}

/**
 * Sends one unary call: the headers, then `write(stream)` (default: nothing)
 * and END_STREAM, and collects the answer. `write` may stream a large body
 * and should stop when the stream closes.
 */
export function rawCall(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer | ((stream: http2.ClientHttp2Stream) => Promise<void>),
  extraHeaders: http2.OutgoingHttpHeaders = {},
  timeoutMs = 15_000,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const stream = session.request(grpcHeaders(path, extraHeaders));
    let httpStatus: number | undefined;
    let grpcStatus: number | undefined;
    let grpcMessage: string | undefined;
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    const readStatus = (headers: http2.IncomingHttpHeaders): void => {
      const status = headers["grpc-status"];
      if (typeof status === "string") grpcStatus = Number(status);
      const message = headers["grpc-message"];
      if (typeof message === "string") grpcMessage = decodeURIComponent(message);
    };
    stream.on("response", (headers) => {
      httpStatus = headers[":status"];
      readStatus(headers);
    });
    stream.on("trailers", readStatus);
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => undefined);
    stream.on("close", () => {
      clearTimeout(timer);
      const rstCode = grpcStatus === undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR ? stream.rstCode : undefined;
      resolve({ httpStatus, grpcStatus, grpcMessage, rstCode, body: Buffer.concat(chunks) });
    });
    if (typeof body === "function") {
      body(stream).then(
        () => {
          if (!stream.closed && !stream.destroyed) stream.end();
        },
        () => undefined,
      );
    } else {
      stream.end(body);
    }
  });
}

/** Writes `chunk` to the stream, waiting for drain; false once the stream is closed. */
export function writeChunk(stream: http2.ClientHttp2Stream, chunk: Buffer): Promise<boolean> {
  if (stream.closed || stream.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off("close", onClose);
      resolve(!stream.closed && !stream.destroyed);
    };
    const onClose = (): void => {
      stream.off("drain", done);
      resolve(false);
    };
    stream.once("close", onClose);
    if (stream.write(chunk)) {
      stream.off("close", onClose);
      resolve(true);
    } else {
      stream.once("drain", done);
    }
  });
}
