import assert from "node:assert/strict";
import zlib from "node:zlib";
import { describe, it } from "node:test";
import { Code } from "../../src/toolkit/rpc/code.js";
import { MessageReader, type ProtocolError } from "../../src/toolkit/wire/message-reader.js";
import {
  decodeGrpcMessage,
  encodeBinaryHeader,
  encodeGrpcMessage,
  formatPeer,
  isGrpcProtoContentType,
  metadataFromHeaders,
  parseGrpcTimeout,
} from "../../src/toolkit/wire/protocol.js";

function frame(message: Buffer, compressed = false): Buffer {
  const header = Buffer.alloc(5);
  header[0] = compressed ? 1 : 0;
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

function read(chunks: readonly Buffer[], options: { max?: number; encoding?: string } = {}) {
  const messages: Buffer[] = [];
  const reader = new MessageReader(options.max ?? 1024, options.encoding, (m) => messages.push(Buffer.from(m)));
  let ok = true;
  for (const chunk of chunks) ok = ok && reader.push(chunk);
  ok = ok && reader.end();
  return { messages, ok, error: reader.error as ProtocolError | undefined };
}

/** Cuts `bytes` at the given offsets. */
function cut(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let start = 0;
  for (const offset of [...offsets, bytes.length]) {
    chunks.push(bytes.subarray(start, offset));
    start = offset;
  }
  return chunks;
}

describe("grpc-timeout", () => {
  it("reads every unit", () => {
    assert.equal(parseGrpcTimeout("2H"), 7_200_000);
    assert.equal(parseGrpcTimeout("3M"), 180_000);
    assert.equal(parseGrpcTimeout("5S"), 5_000);
    assert.equal(parseGrpcTimeout("250m"), 250);
    assert.equal(parseGrpcTimeout("1500u"), 1.5);
    assert.equal(parseGrpcTimeout("2000000n"), 2);
    assert.equal(parseGrpcTimeout("0m"), 0);
    assert.equal(parseGrpcTimeout("99999999S"), 99_999_999_000);
  });

  it("refuses malformed values", () => {
    for (const value of ["", "m", "10", "10s", "10x", "-1S", "1.5S", "123456789S", " 1S", "1 S", "1SS"]) {
      assert.equal(parseGrpcTimeout(value), undefined, value);
    }
  });
});

describe("content-type", () => {
  it("accepts the protobuf gRPC types only", () => {
    for (const type of ["application/grpc", "application/grpc+proto", "application/grpc; charset=utf-8", "Application/GRPC+proto"]) {
      assert.ok(isGrpcProtoContentType(type), type);
    }
    for (const type of [undefined, "", "application/json", "application/grpc+json", "application/grpc-web", "application/grpc-web+proto", "text/plain"]) {
      assert.ok(!isGrpcProtoContentType(type), String(type));
    }
  });
});

describe("grpc-message", () => {
  it("leaves printable ASCII as it is", () => {
    assert.equal(encodeGrpcMessage('no user with id "u1" (see docs)'), 'no user with id "u1" (see docs)');
  });

  it("percent-encodes '%', control characters and UTF-8 bytes", () => {
    assert.equal(encodeGrpcMessage("100%"), "100%25");
    assert.equal(encodeGrpcMessage("a\nb"), "a%0Ab");
    assert.equal(encodeGrpcMessage("café"), "caf%C3%A9");
    const message = "naïve ✓ 100% \t\r\n end";
    assert.match(encodeGrpcMessage(message), /^[\x20-\x7e]*$/);
    assert.equal(decodeGrpcMessage(encodeGrpcMessage(message)), message);
  });

  it("decodes leniently", () => {
    assert.equal(decodeGrpcMessage("50%"), "50%");
    assert.equal(decodeGrpcMessage("%zz%41"), "%zzA");
  });
});

describe("metadata from request headers", () => {
  it("keeps application headers, decodes -bin values and drops the protocol's own", () => {
    const metadata = metadataFromHeaders({
      ":path": "/service.UserService/GetUser",
      ":method": "POST",
      ":authority": "localhost",
      ":scheme": "http",
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": "1S",
      "grpc-encoding": "gzip",
      "grpc-accept-encoding": "gzip",
      "grpc-trace-bin": "AAE",
      "grpc-previous-rpc-attempts": "1",
      "user-agent": "grpc-go/1.33.3",
      "x-request-id": "abc",
      "x-unpadded-bin": "AAH+/w",
      "x-padded-bin": "AAH+/w==",
      "x-several-bin": "AQ==,Ag==",
    });
    assert.deepEqual(metadata, {
      "grpc-trace-bin": new Uint8Array([0, 1]),
      "grpc-previous-rpc-attempts": "1",
      "user-agent": "grpc-go/1.33.3",
      "x-request-id": "abc",
      "x-unpadded-bin": new Uint8Array([0, 1, 0xfe, 0xff]),
      "x-padded-bin": new Uint8Array([0, 1, 0xfe, 0xff]),
      "x-several-bin": new Uint8Array([1]),
    });
  });

  it("encodes -bin values unpadded", () => {
    assert.equal(encodeBinaryHeader(new Uint8Array([0, 1, 0xfe, 0xff])), "AAH+/w");
    assert.equal(encodeBinaryHeader(new Uint8Array([1, 2, 3])), "AQID");
  });

  it("names peers as gRPC does", () => {
    assert.equal(formatPeer("127.0.0.1", 5000), "ipv4:127.0.0.1:5000");
    assert.equal(formatPeer("::1", 5000), "ipv6:[::1]:5000");
  });
});

describe("message framing", () => {
  const one = Buffer.from("hello, world");
  const two = Buffer.from("second message, a little longer");
  const body = Buffer.concat([frame(one), frame(two), frame(Buffer.alloc(0))]);

  it("reads messages whole or cut anywhere, including inside the 5-byte prefix", () => {
    assert.deepEqual(read([body]).messages, [one, two, Buffer.alloc(0)]);
    for (let at = 1; at < body.length; at++) {
      assert.deepEqual(read(cut(body, [at])).messages, [one, two, Buffer.alloc(0)], `cut at ${at}`);
    }
    const byteByByte = Array.from(body, (byte) => Buffer.from([byte]));
    assert.deepEqual(read(byteByByte).messages, [one, two, Buffer.alloc(0)]);
  });

  it("fails when the body ends inside a message", () => {
    for (const at of [3, 7, body.length - 6]) {
      const result = read([body.subarray(0, at)]);
      assert.equal(result.ok, false);
      assert.equal(result.error?.code, Code.INTERNAL);
    }
  });

  it("refuses a message larger than the limit from its length prefix alone", () => {
    const messages: Buffer[] = [];
    const reader = new MessageReader(1024, undefined, (m) => messages.push(m));
    const prefix = Buffer.from([0, 0, 0, 0x04, 0x01]); // 1025 bytes announced, none sent
    assert.equal(reader.push(prefix), false);
    assert.equal(reader.error?.code, Code.RESOURCE_EXHAUSTED);
    assert.equal(reader.push(Buffer.alloc(10)), false);
    assert.deepEqual(messages, []);
    assert.ok(read([frame(Buffer.alloc(1024))]).ok, "exactly the limit passes");
  });

  it("decompresses gzip and deflate messages", () => {
    const gz = frame(zlib.gzipSync(one), true);
    assert.deepEqual(read(cut(gz, [2, 9]), { encoding: "gzip" }).messages, [one]);
    assert.deepEqual(read([frame(zlib.deflateSync(two), true)], { encoding: "deflate" }).messages, [two]);
    // An uncompressed message in a gzip request is fine: the flag decides.
    assert.deepEqual(read([frame(one)], { encoding: "gzip" }).messages, [one]);
  });

  it("caps the decompressed size", () => {
    const bomb = zlib.gzipSync(Buffer.alloc(1_000_000));
    assert.ok(bomb.length < 1024);
    const result = read([frame(bomb, true)], { encoding: "gzip", max: 1024 });
    assert.equal(result.error?.code, Code.RESOURCE_EXHAUSTED);
  });

  it("answers a compressed message in an unsupported encoding with UNIMPLEMENTED and grpc-accept-encoding", () => {
    const result = read([frame(one, true)], { encoding: "snappy" });
    assert.equal(result.error?.code, Code.UNIMPLEMENTED);
    assert.match(result.error?.headers["grpc-accept-encoding"] ?? "", /gzip/);
  });

  it("refuses a compressed message without an encoding, corrupt data and unknown flags", () => {
    assert.equal(read([frame(one, true)]).error?.code, Code.INTERNAL);
    assert.equal(read([frame(one, true)], { encoding: "identity" }).error?.code, Code.INTERNAL);
    assert.equal(read([frame(Buffer.from("not gzip at all"), true)], { encoding: "gzip" }).error?.code, Code.INTERNAL);
    const flagged = frame(one);
    flagged[0] = 2;
    assert.equal(read([flagged]).error?.code, Code.INTERNAL);
  });
});
