import zlib from "node:zlib";
import { Code } from "../rpc/code.js";
import { RpcError } from "../rpc/rpc-error.js";
import { ACCEPTED_ENCODINGS } from "./protocol.js";

/**
 * A body that breaks the protocol or a limit. The server engine answers it,
 * with the extra response headers the protocol asks for (e.g.
 * `grpc-accept-encoding` with UNIMPLEMENTED); the http2 client fails the call with it.
 */
export class ProtocolError extends RpcError {
  override readonly name: string = "ProtocolError";
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: Code, message: string, options: { reason?: string; headers?: Record<string, string> } = {}) {
    super(code, message, options.reason === undefined ? {} : { reason: options.reason });
    this.headers = options.headers ?? {};
  }
}

type Decompress = (bytes: Buffer, options: zlib.ZlibOptions) => Buffer;

const DECOMPRESSORS: Readonly<Record<string, Decompress>> = {
  gzip: zlib.gunzipSync,
  deflate: zlib.inflateSync,
};

/**
 * Splits a request body into gRPC messages: each is a 1-byte compressed flag,
 * a 4-byte big-endian length and that many bytes, and both prefix and message
 * may be cut across any number of DATA chunks. The size limit is checked on
 * the length prefix, before anything is buffered, and again on the
 * decompressed size, so neither a large body nor a small "zip bomb" gets
 * through. Messages are delivered in order through `onMessage`; after the
 * first error the reader stops and `error` says why.
 */
export class MessageReader {
  /** Set once the body broke the protocol or a limit; nothing more is delivered. */
  error: ProtocolError | undefined;
  private headerPart: Buffer | undefined;
  private bodyLength = -1;
  private compressed = false;
  private parts: Buffer[] = [];
  private partBytes = 0;

  constructor(
    private readonly maxMessageBytes: number,
    /** The body's `grpc-encoding`; undefined when absent. */
    private readonly encoding: string | undefined,
    private readonly onMessage: (message: Buffer) => void,
    /** Whose body this is, for the error messages. */
    private readonly body: "request" | "response" = "request",
  ) {}

  /** Feeds one DATA chunk; false once the reader has failed. */
  push(chunk: Buffer): boolean {
    if (this.error !== undefined) return false;
    let data = chunk;
    if (this.headerPart !== undefined) {
      data = Buffer.concat([this.headerPart, chunk]);
      this.headerPart = undefined;
    }
    let offset = 0;
    while (offset < data.length) {
      if (this.bodyLength < 0) {
        if (data.length - offset < 5) {
          this.headerPart = Buffer.from(data.subarray(offset));
          return true;
        }
        const flag = data[offset] as number;
        const length = data.readUInt32BE(offset + 1);
        offset += 5;
        if (!this.startMessage(flag, length)) return false;
        if (data.length - offset >= length) {
          const body = data.subarray(offset, offset + length);
          offset += length;
          this.bodyLength = -1;
          if (!this.deliver(body)) return false;
          continue;
        }
        this.parts.push(data.subarray(offset));
        this.partBytes = data.length - offset;
        return true;
      }
      const missing = this.bodyLength - this.partBytes;
      if (data.length - offset < missing) {
        this.parts.push(data.subarray(offset));
        this.partBytes += data.length - offset;
        return true;
      }
      this.parts.push(data.subarray(offset, offset + missing));
      offset += missing;
      const body = Buffer.concat(this.parts, this.bodyLength);
      this.parts = [];
      this.partBytes = 0;
      this.bodyLength = -1;
      if (!this.deliver(body)) return false;
    }
    return true;
  }

  /** Called at the end of the request body: fails when it stopped inside a message. */
  end(): boolean {
    if (this.error !== undefined) return false;
    if (this.headerPart !== undefined || this.bodyLength >= 0) {
      this.error = new ProtocolError(Code.INTERNAL, `the ${this.body} body ended inside a message`);
      return false;
    }
    return true;
  }

  private startMessage(flag: number, length: number): boolean {
    if (flag > 1) {
      this.error = new ProtocolError(Code.INTERNAL, `invalid message flags ${flag}`);
      return false;
    }
    if (length > this.maxMessageBytes) {
      this.error = new ProtocolError(
        Code.RESOURCE_EXHAUSTED,
        `received message larger than max (${length} vs. ${this.maxMessageBytes})`,
        { reason: "MESSAGE_TOO_LARGE" },
      );
      return false;
    }
    if (flag === 1) {
      if (this.encoding === undefined || this.encoding === "identity") {
        this.error = new ProtocolError(Code.INTERNAL, `a message is marked compressed but the ${this.body} declares no grpc-encoding`);
        return false;
      }
      if (DECOMPRESSORS[this.encoding] === undefined) {
        // A server answers UNIMPLEMENTED and says what it accepts; for a client it is a broken response.
        const message = `message compressed with "${this.encoding}", which is not supported here`;
        this.error =
          this.body === "request"
            ? new ProtocolError(Code.UNIMPLEMENTED, message, { reason: "UNSUPPORTED_ENCODING", headers: { "grpc-accept-encoding": ACCEPTED_ENCODINGS } })
            : new ProtocolError(Code.INTERNAL, message);
        return false;
      }
    }
    this.compressed = flag === 1;
    this.bodyLength = length;
    return true;
  }

  private deliver(body: Buffer): boolean {
    let message = body;
    if (this.compressed) {
      const decompress = DECOMPRESSORS[this.encoding as string] as Decompress;
      try {
        // Bounded by the same limit as an uncompressed message; zlib stops
        // (RangeError) as soon as the output would exceed it.
        message = decompress(body, { maxOutputLength: Math.max(1, this.maxMessageBytes) });
      } catch (error) {
        this.error =
          error instanceof RangeError
            ? new ProtocolError(Code.RESOURCE_EXHAUSTED, `received message that decompresses to a size larger than ${this.maxMessageBytes}`, {
                reason: "MESSAGE_TOO_LARGE",
              })
            : new ProtocolError(Code.INTERNAL, `could not decompress a ${this.encoding} message`);
        return false;
      }
      if (message.length > this.maxMessageBytes) {
        this.error = new ProtocolError(Code.RESOURCE_EXHAUSTED, `received message that decompresses to a size larger than ${this.maxMessageBytes}`, {
          reason: "MESSAGE_TOO_LARGE",
        });
        return false;
      }
    }
    this.onMessage(message);
    return true;
  }
}
