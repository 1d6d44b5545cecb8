/**
 * The pieces of the gRPC over HTTP/2 protocol (doc/PROTOCOL-HTTP2.md in the
 * gRPC repository) that do not touch a socket: header parsing and encoding,
 * kept apart so they can be tested on their own.
 */
import type { IncomingHttpHeaders } from "node:http2";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Code } from "../rpc/code.js";
import type { MessageCodec } from "../rpc/definition.js";
import type { Metadata } from "../rpc/metadata.js";

/** Encodings a request message may be compressed with, in grpc-accept-encoding's form. */
export const ACCEPTED_ENCODINGS = "identity,deflate,gzip";

/** The largest delay setTimeout honours; longer deadlines get no timer. */
export const MAX_TIMER_MS = 2_147_483_647;

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/**
 * Parses `grpc-timeout` (`TimeoutValue TimeoutUnit`: at most 8 ASCII digits,
 * then H, M, S, m, u or n) into milliseconds. Returns undefined when the value
 * is malformed.
 */
export function parseGrpcTimeout(value: string): number | undefined {
  const length = value.length;
  if (length < 2 || length > 9) return undefined;
  const unit = TIMEOUT_UNIT_MS[value[length - 1] as string];
  if (unit === undefined) return undefined;
  let amount = 0;
  for (let i = 0; i < length - 1; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    amount = amount * 10 + digit;
  }
  return amount * unit;
}

/**
 * True for the content types a gRPC server must accept with the protobuf
 * codec: `application/grpc` and `application/grpc+proto`, optionally with
 * parameters. Anything else (grpc+json, grpc-web, text/html...) is answered
 * with HTTP 415.
 */
export function isGrpcProtoContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  if (contentType === "application/grpc" || contentType === "application/grpc+proto") return true;
  const semicolon = contentType.indexOf(";");
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return type === "application/grpc" || type === "application/grpc+proto";
}

// 0x20–0x7E pass as they are, except '%' itself.
const NEEDS_PERCENT_ENCODING = /[^\x20-\x24\x26-\x7e]/;

/** Percent-encodes a status message for `grpc-message` (UTF-8 bytes outside 0x20–0x7E, and '%'). */
export function encodeGrpcMessage(message: string): string {
  if (!NEEDS_PERCENT_ENCODING.test(message)) return message;
  let encoded = "";
  for (const byte of Buffer.from(message, "utf8")) {
    encoded +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

/** Reverses encodeGrpcMessage, leaving malformed escapes as they are (as the spec asks). */
export function decodeGrpcMessage(encoded: string): string {
  if (!encoded.includes("%")) return encoded;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const hex = encoded.slice(i + 1, i + 3);
    if (encoded[i] === "%" && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(encoded.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** Prefixes a message with the 5-byte gRPC header (uncompressed). */
export function frameMessage(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * One writer for every message this process encodes: encoding is
 * synchronous, and `finish()` copies the bytes out and resets it, so its
 * buffer is reused instead of a new one being allocated (and collected) per call.
 */
const writer = new BinaryWriter();

/** `message` encoded with `codec` and framed; throws what the codec throws. */
export function encodeFrame<T>(codec: MessageCodec<T>, message: T): Buffer {
  return frameMessage(encode(codec, message));
}

/** `message` encoded with `codec`, unframed (a message inside another); throws what the codec throws. */
export function encodeMessage<T>(codec: MessageCodec<T>, message: T): Buffer {
  const bytes = encode(codec, message);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function encode<T>(codec: MessageCodec<T>, message: T): Uint8Array {
  try {
    return codec.encode(message, writer).finish();
  } catch (error) {
    writer.finish(); // discards what the failed encode left behind
    throw error;
  }
}

/** Base64 for a `-bin` header: standard alphabet, unpadded (what the spec asks senders to emit). */
export function encodeBinaryHeader(bytes: Uint8Array): string {
  const base64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  let end = base64.length;
  while (end > 0 && base64.charCodeAt(end - 1) === 61 /* = */) end--;
  return end === base64.length ? base64 : base64.slice(0, end);
}

/**
 * Request headers that belong to the protocol, not to the application: they
 * never appear in a handler's metadata, nor do HTTP/2 pseudo-headers
 * (`:path`...). Other `grpc-` headers stay, as grpc-js and grpc-go keep them:
 * `grpc-previous-rpc-attempts` (gRFC A6) and `grpc-trace-bin` mean something to handlers.
 */
export const PROTOCOL_HEADERS: ReadonlySet<string> = new Set([
  "content-type",
  "te",
  "accept-encoding",
  "content-length",
  "host",
  "connection",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
]);

/**
 * The application metadata in a request's headers. `-bin` values are decoded
 * from base64 (padded or not); when a header was sent several times, a text
 * value keeps all of them joined by ", " (as HTTP does) and a binary value
 * keeps the first (as @grpc/grpc-js's Metadata.getMap does).
 */
export function metadataFromHeaders(headers: IncomingHttpHeaders): Metadata {
  const metadata: Record<string, string | Uint8Array> = {};
  for (const key of Object.keys(headers)) {
    if (key.charCodeAt(0) === 58 /* : */ || PROTOCOL_HEADERS.has(key)) continue;
    const raw = headers[key];
    if (raw === undefined) continue;
    const value = Array.isArray(raw) ? raw.join(", ") : raw;
    if (key.endsWith("-bin")) {
      const first = value.split(",", 1)[0] ?? "";
      metadata[key] = new Uint8Array(Buffer.from(first.trim(), "base64"));
    } else {
      metadata[key] = value;
    }
  }
  return metadata;
}

/** `ipv4:127.0.0.1:51234` or `ipv6:[::1]:51234`, as gRPC names peers. */
export function formatPeer(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return "unknown";
  return address.includes(":") ? `ipv6:[${address}]:${port ?? 0}` : `ipv4:${address}:${port ?? 0}`;
}

/**
 * A `grpc-timeout` value for `ms` milliseconds: whole milliseconds while they
 * fit the 8 digits the spec allows, then coarser units (rounded up, so a
 * deadline is never sent shorter than it is). At least 1 ms.
 */
export function formatGrpcTimeout(ms: number): string {
  const millis = Math.max(1, Math.ceil(ms));
  if (millis < 100_000_000) return `${millis}m`;
  const secondsLeft = Math.ceil(millis / 1_000);
  if (secondsLeft < 100_000_000) return `${secondsLeft}S`;
  return `${Math.min(99_999_999, Math.ceil(secondsLeft / 3_600))}H`;
}

/**
 * The status of a response whose HTTP status is not 200, as the gRPC spec
 * maps them (doc/http-grpc-status-mapping.md): what a proxy or a server that
 * is not gRPC at all answered.
 */
export function codeOfHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.INTERNAL;
    case 401:
      return Code.UNAUTHENTICATED;
    case 403:
      return Code.PERMISSION_DENIED;
    case 404:
      return Code.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.UNAVAILABLE;
    default:
      return Code.UNKNOWN;
  }
}
