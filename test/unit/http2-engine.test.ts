/**
 * The node:http2 engine's handling of the gRPC protocol's edges, driven with
 * a raw node:http2 client so that every header, frame and reset is ours to
 * choose (real gRPC clients never send most of these).
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import zlib from "node:zlib";
import { after, before, describe, it } from "node:test";
import { UserRequest, UserResponse } from "../../src/gen/service/v1/service.js";
import { deriveCallContext } from "../../src/toolkit/rpc/call-context.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { decodeStatusDetails } from "../../src/toolkit/rpc/status-details.js";
import { GET_USER, startTestServer, type TestServer, UNICODE_MESSAGE } from "../interop/support.js";

const { NGHTTP2_CANCEL } = http2.constants;

function frame(message: Uint8Array, compressed = false): Buffer {
  const header = Buffer.alloc(5);
  header[0] = compressed ? 1 : 0;
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

const userRequest = (userId: string): Buffer => frame(UserRequest.encode({ userId }).finish());

interface Exchange {
  readonly headers: http2.IncomingHttpHeaders;
  /** True when the response HEADERS frame ended the stream (trailers-only or an HTTP error). */
  readonly headersEndedStream: boolean;
  readonly trailers: http2.IncomingHttpHeaders | undefined;
  readonly data: Buffer;
}

interface RequestOptions {
  readonly path?: string;
  readonly headers?: http2.OutgoingHttpHeaders;
  /** Written one by one, each after the previous one has gone out. */
  readonly chunks?: readonly Buffer[];
  /** Leave the request open after the chunks. */
  readonly keepOpen?: boolean;
  /** Called with the request stream once the chunks are written. */
  readonly then?: (stream: http2.ClientHttp2Stream) => void;
}

const GRPC_HEADERS = { ":method": "POST", "content-type": "application/grpc", te: "trailers" };

function request(session: http2.ClientHttp2Session, options: RequestOptions): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ...GRPC_HEADERS, ":path": options.path ?? GET_USER, ...options.headers }, { endStream: false });
    let headers: http2.IncomingHttpHeaders = {};
    let headersEndedStream = false;
    let trailers: http2.IncomingHttpHeaders | undefined;
    const data: Buffer[] = [];
    stream.on("response", (received, flags) => {
      headers = received;
      headersEndedStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    stream.on("trailers", (received) => (trailers = received));
    stream.on("data", (chunk: Buffer) => data.push(chunk));
    stream.on("close", () => resolve({ headers, headersEndedStream, trailers, data: Buffer.concat(data) }));
    stream.on("error", reject);
    void (async () => {
      for (const chunk of options.chunks ?? []) {
        if (stream.closed) return;
        await new Promise<void>((done) => stream.write(chunk, () => setTimeout(done, 2)));
      }
      if (!options.keepOpen && !stream.closed) stream.end();
      options.then?.(stream);
    })();
  });
}

/** grpc-status of an exchange, from the trailers or a trailers-only response. */
function statusOf(exchange: Exchange): number {
  return Number((exchange.trailers ?? exchange.headers)["grpc-status"]);
}

describe("node:http2 engine, protocol edges", () => {
  let server: TestServer;
  let session: http2.ClientHttp2Session;
  before(async () => {
    server = await startTestServer("http2", { maxReceiveMessageBytes: 64 * 1024 });
    session = http2.connect(`http://${server.address}`);
  });
  after(async () => {
    session.close();
    await server.close();
  });

  it("answers a call with headers, one length-prefixed message and grpc-status 0 in the trailers", async () => {
    const exchange = await request(session, { chunks: [userRequest("u1")] });
    assert.equal(exchange.headers[":status"], 200);
    assert.equal(exchange.headers["content-type"], "application/grpc");
    assert.equal(exchange.headersEndedStream, false);
    assert.equal(exchange.trailers?.["grpc-status"], "0");
    assert.equal(exchange.data[0], 0);
    assert.equal(exchange.data.readUInt32BE(1), exchange.data.length - 5);
    assert.deepEqual(UserResponse.decode(exchange.data.subarray(5)), { name: "Ada", email: "ada@example.com", userId: "u1" });
  });

  it("advertises at most 100 concurrent streams and a 16 KiB header list", async () => {
    if (session.remoteSettings.maxConcurrentStreams === undefined) await new Promise((resolve) => session.once("remoteSettings", resolve));
    assert.equal(session.remoteSettings.maxConcurrentStreams, 100);
    assert.equal(session.remoteSettings.maxHeaderListSize, 16 * 1024);
  });

  it("reads a request message sent one byte per DATA frame", async () => {
    const bytes = userRequest("split-user");
    const exchange = await request(session, { chunks: Array.from(bytes, (b) => Buffer.from([b])) });
    assert.equal(statusOf(exchange), Code.OK);
    assert.equal(UserResponse.decode(exchange.data.subarray(5)).userId, "split-user");
  });

  it("accepts application/grpc+proto", async () => {
    const exchange = await request(session, { headers: { "content-type": "application/grpc+proto" }, chunks: [userRequest("u1")] });
    assert.equal(statusOf(exchange), Code.OK);
  });

  it("answers HTTP 415 to other content types and 405 to other methods", async () => {
    for (const type of ["application/json", "application/grpc+json", "application/grpc-web+proto", "text/plain"]) {
      const exchange = await request(session, { headers: { "content-type": type }, chunks: [userRequest("u1")] });
      assert.equal(exchange.headers[":status"], 415, type);
    }
    const get = await request(session, { headers: { ":method": "PUT" }, chunks: [userRequest("u1")] });
    assert.equal(get.headers[":status"], 405);
  });

  it("requires te: trailers", async () => {
    const exchange = await request(session, { headers: { te: undefined }, chunks: [userRequest("u1")] });
    assert.equal(exchange.headers[":status"], 400);
    assert.equal(statusOf(exchange), Code.INTERNAL);
  });

  it("answers errors trailers-only: the status in the one HEADERS frame, with END_STREAM", async () => {
    const exchange = await request(session, { chunks: [userRequest("missing")] });
    assert.equal(exchange.headersEndedStream, true);
    assert.equal(exchange.trailers, undefined);
    assert.equal(exchange.data.length, 0);
    assert.equal(exchange.headers[":status"], 200);
    assert.equal(exchange.headers["content-type"], "application/grpc");
    assert.equal(exchange.headers["grpc-status"], String(Code.NOT_FOUND));
    assert.equal(exchange.headers["grpc-message"], 'no user with id "missing"');
    const details = decodeStatusDetails(Buffer.from(String(exchange.headers["grpc-status-details-bin"]), "base64"), Code.NOT_FOUND);
    assert.equal(details?.reason, "USER_NOT_FOUND");
  });

  it("percent-encodes grpc-message on the wire", async () => {
    const exchange = await request(session, { chunks: [userRequest("unicode")] });
    const raw = String(exchange.headers["grpc-message"]);
    assert.match(raw, /^[\x20-\x7e]+$/);
    assert.match(raw, /100%25/);
    assert.equal(decodeURIComponent(raw), UNICODE_MESSAGE);
  });

  it("answers UNIMPLEMENTED, trailers-only, for an unknown method", async () => {
    const exchange = await request(session, { path: "/service.UserService/Nope", chunks: [userRequest("u1")] });
    assert.equal(exchange.headersEndedStream, true);
    assert.equal(statusOf(exchange), Code.UNIMPLEMENTED);
  });

  it("answers INTERNAL to a unary call with no message or with two", async () => {
    assert.equal(statusOf(await request(session, { chunks: [] })), Code.INTERNAL);
    assert.equal(statusOf(await request(session, { chunks: [Buffer.concat([userRequest("a"), userRequest("b")])] })), Code.INTERNAL);
    assert.equal(statusOf(await request(session, { chunks: [userRequest("a"), userRequest("b")] })), Code.INTERNAL);
  });

  it("answers INVALID_ARGUMENT to a body that does not decode", async () => {
    const exchange = await request(session, { chunks: [frame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))] });
    assert.equal(statusOf(exchange), Code.INVALID_ARGUMENT);
  });

  it("decompresses gzip requests, and answers an unsupported encoding with UNIMPLEMENTED and grpc-accept-encoding", async () => {
    const gz = frame(zlib.gzipSync(UserRequest.encode({ userId: "zipped" }).finish()), true);
    const ok = await request(session, { headers: { "grpc-encoding": "gzip" }, chunks: [gz] });
    assert.equal(statusOf(ok), Code.OK);
    assert.equal(UserResponse.decode(ok.data.subarray(5)).userId, "zipped");
    const snappy = await request(session, { headers: { "grpc-encoding": "snappy" }, chunks: [frame(Buffer.from("??"), true)] });
    assert.equal(statusOf(snappy), Code.UNIMPLEMENTED);
    assert.match(String(snappy.headers["grpc-accept-encoding"]), /gzip/);
    const unflagged = await request(session, { headers: { "grpc-encoding": "gzip" }, chunks: [frame(zlib.gzipSync(Buffer.from("x")))] });
    assert.equal(statusOf(unflagged), Code.INVALID_ARGUMENT, "the flag, not the header, says whether a message is compressed");
  });

  it("refuses an oversized message from its length prefix, before the body arrives", async () => {
    const prefix = Buffer.from([0, 0, 0x10, 0, 0]); // 1 MiB announced, limit 64 KiB
    const exchange = await request(session, { chunks: [prefix], keepOpen: true });
    assert.equal(statusOf(exchange), Code.RESOURCE_EXHAUSTED);
    assert.equal(exchange.headersEndedStream, true);
  });

  it("times the call out with DEADLINE_EXCEEDED on its own (grpc-timeout), and aborts the handler's signal", async () => {
    const since = server.events.length;
    const started = Date.now();
    const exchange = await request(session, { headers: { "grpc-timeout": "200m" }, chunks: [userRequest("slow-raw-deadline")] });
    assert.equal(statusOf(exchange), Code.DEADLINE_EXCEEDED);
    assert.equal(exchange.headersEndedStream, true);
    assert.ok(Date.now() - started >= 190);
    assert.deepEqual(await server.nextEvent("slow-raw-deadline", "aborted", since), {
      userId: "slow-raw-deadline",
      kind: "aborted",
      code: Code.DEADLINE_EXCEEDED,
    });
  });

  it("converts every grpc-timeout unit into the handler's deadline", async () => {
    for (const [timeout, ms] of [
      ["1H", 3_600_000],
      ["2M", 120_000],
      ["3S", 3_000],
      ["4000m", 4_000],
      ["5000000u", 5_000],
      ["99999999n", 100],
    ] as const) {
      const exchange = await request(session, { headers: { "grpc-timeout": timeout }, chunks: [userRequest("deadline")] });
      assert.equal(statusOf(exchange), Code.OK, timeout);
      const left = Number(UserResponse.decode(exchange.data.subarray(5)).email);
      assert.ok(left <= ms && left > ms - 1_000, `${timeout}: ${left} ms left`);
    }
    const huge = await request(session, { headers: { "grpc-timeout": "99999999H" }, chunks: [userRequest("u1")] });
    assert.equal(statusOf(huge), Code.OK);
    const tooLong = await request(session, { headers: { "grpc-timeout": "100000000n" }, chunks: [userRequest("u1")] });
    assert.equal(statusOf(tooLong), Code.INTERNAL, "at most 8 digits");
  });

  it("answers INTERNAL to a malformed grpc-timeout", async () => {
    const exchange = await request(session, { headers: { "grpc-timeout": "soon" }, chunks: [userRequest("u1")] });
    assert.equal(statusOf(exchange), Code.INTERNAL);
  });

  it("aborts the handler's signal with CANCELLED when the client resets the stream", async () => {
    const since = server.events.length;
    const started = server.nextEvent("slow-raw-reset", "started", since);
    void request(session, { chunks: [userRequest("slow-raw-reset")], then: (stream) => void started.then(() => stream.close(NGHTTP2_CANCEL)) }).catch(() => undefined);
    assert.deepEqual(await server.nextEvent("slow-raw-reset", "aborted", since), { userId: "slow-raw-reset", kind: "aborted", code: Code.CANCELLED });
  });

  it("decodes -bin metadata, padded or not, and hides the protocol's own headers", async () => {
    const exchange = await request(session, {
      headers: { "x-unpadded-bin": "AAH+/w", "x-padded-bin": "AAH+/w==", "x-text": "hello", "grpc-accept-encoding": "gzip", "grpc-previous-rpc-attempts": "1" },
      chunks: [userRequest("metadata")],
    });
    const seen = JSON.parse(UserResponse.decode(exchange.data.subarray(5)).name) as Record<string, string>;
    // Other grpc- headers reach the handler, as on grpc-js and grpc-go: a retry knows it is one.
    assert.deepEqual(seen, { "x-unpadded-bin": "hex:0001feff", "x-padded-bin": "hex:0001feff", "x-text": "hello", "grpc-previous-rpc-attempts": "1" });
  });
});

describe("node:http2 engine, call context", () => {
  it("keeps metadata, peer, deadline and the signal in a context derived by an interceptor", async () => {
    const seen: { peer: string; deadline: number | undefined; signal: boolean }[] = [];
    const server = await startTestServer("http2", {
      // As interceptors that narrow the deadline or add a principal do.
      interceptors: [
        (call, next) => {
          const context = deriveCallContext(call.context, {});
          seen.push({ peer: context.peer, deadline: context.deadline, signal: context.signal instanceof AbortSignal });
          return next({ ...call, context });
        },
      ],
    });
    const session = http2.connect(`http://${server.address}`);
    try {
      const exchange = await request(session, { headers: { "x-text": "hello", "grpc-timeout": "5S" }, chunks: [userRequest("metadata")] });
      assert.deepEqual(JSON.parse(UserResponse.decode(exchange.data.subarray(5)).name), { "x-text": "hello" });
      assert.match(seen[0]?.peer ?? "", /^ipv4:127\.0\.0\.1:\d+$/);
      assert.ok(seen[0]?.signal);
      assert.ok((seen[0]?.deadline ?? 0) > Date.now());
      const since = server.events.length;
      void request(session, { headers: { "grpc-timeout": "200m" }, chunks: [userRequest("slow-derived")] });
      assert.deepEqual(await server.nextEvent("slow-derived", "aborted", since), { userId: "slow-derived", kind: "aborted", code: Code.DEADLINE_EXCEEDED });
    } finally {
      session.close();
      await server.close();
    }
  });
});

  it("carries the caller's traceparent and tracestate as they arrived, without tracing", async () => {
    const seen: { traceParent: string | undefined; traceState: string | undefined }[] = [];
    const server = await startTestServer("http2", {
      interceptors: [
        (call, next) => {
          seen.push({ traceParent: call.context.traceParent, traceState: call.context.traceState });
          return next();
        },
      ],
    });
    const session = http2.connect(`http://${server.address}`);
    try {
      const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
      await request(session, { headers: { traceparent, tracestate: "vendor=a" }, chunks: [userRequest("traced")] });
      await request(session, { chunks: [userRequest("untraced")] });
      assert.deepEqual(seen, [
        { traceParent: traceparent, traceState: "vendor=a" },
        { traceParent: undefined, traceState: undefined },
      ]);
    } finally {
      session.close();
      await server.close();
    }
  });

describe("node:http2 engine, shutdown", () => {
  it("sends GOAWAY, lets the call in flight finish, then closes", async () => {
    const server = await startTestServer("http2", { drainTimeoutMs: 5_000 });
    const session = http2.connect(`http://${server.address}`);
    try {
      const goaway = new Promise<number>((resolve) => session.once("goaway", (code: number) => resolve(code)));
      const started = server.nextEvent("sleep:300", "started");
      const inFlight = request(session, { chunks: [userRequest("sleep:300")] });
      await started;
      const closing = server.close();
      assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
      const exchange = await inFlight;
      assert.equal(statusOf(exchange), Code.OK);
      await closing;
    } finally {
      session.destroy();
    }
  });
});
