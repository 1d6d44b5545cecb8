/**
 * Services written for grpc-js's `addService` API (here grpc.testing.TestService
 * of test-service.ts) behave the same on the http2 engine, through its grpc-js
 * adapter, as on grpc-js's own server: each behaviour below runs against both
 * engines with a @grpc/grpc-js client. Regression tests for the adapter's bugs
 * the interop cases found live here, one `it` each.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { createRpcServer } from "../../src/toolkit/server/grpc-js-server.js";
import { createHttp2RpcServer } from "../../src/toolkit/server/http2/http2-server.js";
import type { GrpcJsService } from "../../src/toolkit/server/rpc-server.js";
import { ENGINES } from "./support.js";
import { missingGrpcProto, startTestServiceServer, testService, type TestServiceServer } from "./test-service.js";

const missing = missingGrpcProto();
if (missing !== undefined) throw new Error(missing);

interface Payload {
  readonly body: Buffer;
}
interface StreamingOutputCallResponse {
  readonly payload: Payload | null;
}
interface SimpleResponse {
  readonly payload: Payload | null;
}

const definition = testService().definition;
const method = <Res>(name: string): grpc.MethodDefinition<object, Res> => definition[name] as grpc.MethodDefinition<object, Res>;
const STREAMING_OUTPUT = method<StreamingOutputCallResponse>("StreamingOutputCall");
const FULL_DUPLEX = method<StreamingOutputCallResponse>("FullDuplexCall");
const STREAMING_INPUT = method<{ readonly aggregated_payload_size: number }>("StreamingInputCall");
const UNARY = method<SimpleResponse>("UnaryCall");

const zeros = (size: number): { type: string; body: Buffer } => ({ type: "COMPRESSABLE", body: Buffer.alloc(size) });
const seconds = (n: number): Date => new Date(Date.now() + n * 1000);

/** Collects a response stream to its end: the messages, or the status it failed with. */
function collect<T>(call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<object, T>): Promise<{ messages: T[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const messages: T[] = [];
    call.on("data", (message: T) => messages.push(message));
    call.on("error", (error: grpc.ServiceError) => resolve({ messages, error }));
    call.on("end", () => resolve({ messages }));
  });
}

/** One HTTP/2 frame: 9-byte header (length, type, flags, stream id) and payload. */
function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK "literal header field without indexing, new name", no Huffman (names and values under 127 bytes). */
function hpackLiteral(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/**
 * A hand-written HTTP/2 client connection, for what node:http2's client
 * cannot do: reset a stream without half-closing it first (its close()
 * sends END_STREAM, then RST_STREAM), as grpc-go and the C core cancel.
 * ACKs the server's SETTINGS; ignores everything else the server sends.
 */
async function rawConnection(address: string): Promise<{ send(frame: Buffer): void; close(): void }> {
  const [host, port] = address.split(":") as [string, string];
  const socket = net.connect(Number(port), host);
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  socket.write(h2Frame(4, 0, 0, Buffer.alloc(0)));
  let pending = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
      const type = pending[3];
      const flags = pending[4] as number;
      if (type === 4 && (flags & 1) === 0) socket.write(h2Frame(4, 1, 0, Buffer.alloc(0)));
      pending = pending.subarray(9 + pending.readUIntBE(0, 3));
    }
  });
  socket.on("error", () => undefined);
  return { send: (frame) => socket.write(frame), close: () => socket.destroy() };
}

/** A server-streaming service on raw bytes whose handler writes with callbacks, one after the other, as Node Writable code does. */
const CALLBACK_WRITES: GrpcJsService = {
  definition: {
    Count: {
      path: "/switchyard.test.Callbacks/Count",
      requestStream: false,
      responseStream: true,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  implementation: {
    Count(call: grpc.ServerWritableStream<Buffer, Buffer>) {
      const next = (i: number): void => {
        if (i === 3) {
          call.end();
          return;
        }
        call.write(Buffer.from(String(i)), (error?: Error | null) => {
          if (error) call.destroy(error);
          else next(i + 1);
        });
      };
      next(0);
    },
  } as grpc.UntypedServiceImplementation,
};

const raw = (path: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
});

/**
 * Client-streaming handlers that read their requests the ways a grpc-js
 * call (a Node Readable) allows: listeners attached only after an await,
 * and `for await`. Each answers the requests joined by commas.
 */
const LATE_READERS: GrpcJsService = {
  definition: {
    Late: raw("/switchyard.test.Readers/Late", true, false),
    Iterate: raw("/switchyard.test.Readers/Iterate", true, false),
  },
  implementation: {
    Late(call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      const seen: string[] = [];
      // Starts reading only once the first request has surely arrived.
      void new Promise((resolve) => setTimeout(resolve, 200)).then(() => {
        call.on("data", (request: Buffer) => seen.push(request.toString()));
        call.on("end", () => callback(null, Buffer.from(seen.join(","))));
      });
    },
    Iterate(call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      void (async () => {
        const seen: string[] = [];
        for await (const request of call as AsyncIterable<Buffer>) seen.push(request.toString());
        callback(null, Buffer.from(seen.join(",")));
      })();
    },
  } as grpc.UntypedServiceImplementation,
};

for (const engine of ENGINES) {
  describe(`grpc-js-style handlers of a raw service on the ${engine} engine`, () => {
    for (const name of ["Late", "Iterate"]) {
      it(`gives a client-streaming handler every request (${name === "Late" ? "listeners attached after an await" : "for await"})`, async () => {
        const options = { logger: silentLogger(), drainTimeoutMs: 500, grpcJsServices: [LATE_READERS] };
        const server = engine === "http2" ? createHttp2RpcServer(options) : createRpcServer(options);
        const port = await server.listen("127.0.0.1:0");
        const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
        try {
          const method = LATE_READERS.definition[name] as grpc.MethodDefinition<Buffer, Buffer>;
          const answer = await new Promise<string>((resolve, reject) => {
            const call = client.makeClientStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new grpc.Metadata(), { deadline: seconds(5) }, (error, value) =>
              error ? reject(error) : resolve(String(value)),
            );
            for (const request of ["a", "b", "c"]) call.write(Buffer.from(request));
            call.end();
          });
          assert.equal(answer, "a,b,c");
        } finally {
          client.close();
          await server.shutdown();
        }
      });
    }

    it("calls write()'s callback, so a handler that writes one message after another finishes", async () => {
      const options = { logger: silentLogger(), drainTimeoutMs: 500, grpcJsServices: [CALLBACK_WRITES] };
      const server = engine === "http2" ? createHttp2RpcServer(options) : createRpcServer(options);
      const port = await server.listen("127.0.0.1:0");
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      try {
        const method = CALLBACK_WRITES.definition["Count"] as grpc.MethodDefinition<Buffer, Buffer>;
        const call = client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, Buffer.alloc(0), new grpc.Metadata(), {
          deadline: seconds(5),
        });
        const { messages, error } = await collect(call);
        assert.equal(error, undefined, error?.details);
        assert.deepEqual(
          messages.map((m) => m.toString()),
          ["0", "1", "2"],
        );
      } finally {
        client.close();
        await server.shutdown();
      }
    });
  });

  describe(`grpc-js-style TestService handlers on the ${engine} engine`, () => {
    let server: TestServiceServer;
    let client: grpc.Client;
    before(async () => {
      server = await startTestServiceServer(engine);
      client = new grpc.Client(server.address, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 16 << 20 });
    });
    after(async () => {
      client.close();
      await server.close();
    });

    it("serves a handler that waits for drain when write() reports a full buffer", async () => {
      // Each response is larger than the stream's buffer, so every write()
      // returns false and the handler waits for `drain` before the next.
      const sizes = [200_000, 300_000, 100_000, 500_000, 1];
      const call = client.makeServerStreamRequest(
        STREAMING_OUTPUT.path,
        STREAMING_OUTPUT.requestSerialize,
        STREAMING_OUTPUT.responseDeserialize,
        { response_parameters: sizes.map((size) => ({ size })) },
        new grpc.Metadata(),
        { deadline: seconds(10) },
      );
      const { messages, error } = await collect(call);
      assert.equal(error, undefined);
      assert.deepEqual(
        messages.map((m) => m.payload?.body.length),
        sizes,
      );
    });

    it("ends a bidi call with the handler's status while the client is still sending", async () => {
      const call = client.makeBidiStreamRequest(FULL_DUPLEX.path, FULL_DUPLEX.requestSerialize, FULL_DUPLEX.responseDeserialize, new grpc.Metadata(), {
        deadline: seconds(10),
      });
      const outcome = collect(call);
      call.write({ response_parameters: [{ size: 70_000 }], payload: zeros(10) });
      call.write({ response_status: { code: grpc.status.FAILED_PRECONDITION, message: "stop here" } });
      // No end(): the server ends the call on its own.
      const { messages, error } = await outcome;
      assert.equal(messages.length, 1);
      assert.equal(error?.code, grpc.status.FAILED_PRECONDITION, error?.details);
      assert.equal(error?.details, "stop here");
      call.end();
    });

    it("ends a bidi call with a trailers-only status while the client is still sending", async () => {
      const call = client.makeBidiStreamRequest(FULL_DUPLEX.path, FULL_DUPLEX.requestSerialize, FULL_DUPLEX.responseDeserialize, new grpc.Metadata(), {
        deadline: seconds(10),
      });
      const outcome = collect(call);
      call.write({ response_status: { code: grpc.status.ABORTED, message: "at once" } });
      const { messages, error } = await outcome;
      assert.equal(messages.length, 0);
      assert.equal(error?.code, grpc.status.ABORTED, error?.details);
      assert.equal(error?.details, "at once");
      call.end();
    });

    it("echoes trailing metadata with an error status sent as trailers-only", async () => {
      const metadata = new grpc.Metadata();
      metadata.set("x-grpc-test-echo-trailing-bin", Buffer.from([0xab, 0xab, 0xab]));
      const error = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.makeUnaryRequest(
          UNARY.path,
          UNARY.requestSerialize,
          UNARY.responseDeserialize,
          { response_status: { code: grpc.status.UNKNOWN, message: "echo" } },
          metadata,
          { deadline: seconds(10) },
          (err) => resolve(err),
        ),
      );
      assert.equal(error?.code, grpc.status.UNKNOWN);
      assert.deepEqual(error?.metadata.get("x-grpc-test-echo-trailing-bin"), [Buffer.from([0xab, 0xab, 0xab])]);
    });

    it("tells a bidi handler that the client cancelled while it was still responding", async () => {
      const since = server.events.length;
      const call = client.makeBidiStreamRequest(FULL_DUPLEX.path, FULL_DUPLEX.requestSerialize, FULL_DUPLEX.responseDeserialize, new grpc.Metadata(), {
        deadline: seconds(10),
      });
      call.on("error", () => undefined);
      // The second response comes only after 10 s: the handler is busy when the client cancels.
      call.write({ response_parameters: [{ size: 1 }, { size: 1, interval_us: 10_000_000 }] });
      await new Promise((resolve) => call.once("data", resolve));
      call.cancel();
      await server.waitFor((event) => event.method === "FullDuplexCall" && event.kind === "cancelled", since);
    });

    it("tells a client-streaming handler of a reset that came without END_STREAM, rather than ending its requests", async () => {
      // node:http2 ends the server stream's readable side on such a reset too:
      // the adapter took that for the last request and the handler answered.
      const since = server.events.length;
      const connection = await rawConnection(server.address);
      try {
        const headers = Buffer.concat([
          hpackLiteral(":method", "POST"),
          hpackLiteral(":scheme", "http"),
          hpackLiteral(":path", STREAMING_INPUT.path),
          hpackLiteral(":authority", server.address),
          hpackLiteral("content-type", "application/grpc"),
          hpackLiteral("te", "trailers"),
        ]);
        const message = STREAMING_INPUT.requestSerialize({ payload: zeros(10) });
        const grpcFrame = Buffer.concat([Buffer.from([0]), Buffer.alloc(4), message]);
        grpcFrame.writeUInt32BE(message.length, 1);
        connection.send(h2Frame(1, 0x4 /* END_HEADERS */, 1, headers));
        connection.send(h2Frame(0, 0, 1, grpcFrame));
        await server.waitFor((event) => event.method === "StreamingInputCall" && event.kind === "started", since);
        const cancel = Buffer.alloc(4);
        cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
        connection.send(h2Frame(3, 0, 1, cancel));
        await server.waitFor((event) => event.method === "StreamingInputCall" && event.kind === "cancelled", since);
      } finally {
        connection.close();
      }
    });

    it("tells a bidi handler when the server rejects one of its requests (too large)", async () => {
      const since = server.events.length;
      const call = client.makeBidiStreamRequest(FULL_DUPLEX.path, FULL_DUPLEX.requestSerialize, FULL_DUPLEX.responseDeserialize, new grpc.Metadata(), {
        deadline: seconds(10),
      });
      const outcome = collect(call);
      // The handler is busy with the second response (10 s away) when the
      // next request, over the 4 MiB limit, arrives.
      call.write({ response_parameters: [{ size: 1 }, { size: 1, interval_us: 10_000_000 }] });
      call.write({ payload: zeros(5 << 20) });
      const { error } = await outcome;
      assert.equal(error?.code, grpc.status.RESOURCE_EXHAUSTED, error?.details);
      await server.waitFor((event) => event.method === "FullDuplexCall" && event.kind === "cancelled", since);
      call.end();
    });

    it("ends a bidi call with DEADLINE_EXCEEDED at its grpc-timeout and tells the handler", async () => {
      // A raw client that keeps its stream open past the deadline, so that the
      // server's own deadline ends the call (a grpc-js client would race it
      // with its own timer).
      const since = server.events.length;
      const session = http2.connect(`http://${server.address}`);
      try {
        const stream = session.request({ ":method": "POST", ":path": FULL_DUPLEX.path, "content-type": "application/grpc", te: "trailers", "grpc-timeout": "200m" });
        stream.on("error", () => undefined);
        stream.write(Buffer.from([0, 0, 0, 0, 0])); // one empty request: no responses asked for
        const status = await new Promise<string | string[] | undefined>((resolve) => {
          stream.on("response", (headers) => headers["grpc-status"] !== undefined && resolve(headers["grpc-status"]));
          stream.on("trailers", (trailers) => resolve(trailers["grpc-status"]));
        });
        assert.equal(status, String(grpc.status.DEADLINE_EXCEEDED));
        await server.waitFor((event) => event.method === "FullDuplexCall" && event.kind === "cancelled", since);
      } finally {
        session.destroy();
      }
    });
  });
}
