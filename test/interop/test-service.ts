/**
 * grpc.testing.TestService, the service of gRPC's cross-language interop
 * suite (doc/interop-test-descriptions.md in the gRPC repository), written for
 * grpc-js's `addService` API and loaded with @grpc/proto-loader from Debian's
 * grpc-proto (test-only code: our own services use generated code). Hosted on
 * either engine through the `grpcJsServices` option, so that the http2
 * engine's grpc-js adapter and grpc-js's own server are held to the same
 * cases by clients we did not write.
 *
 * Usage as a program (for running a client by hand):
 *   node --import tsx test/interop/test-service.ts --engine http2|grpc-js [--port N]
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { createRpcServer } from "../../src/toolkit/server/grpc-js-server.js";
import { createHttp2RpcServer } from "../../src/toolkit/server/http2/http2-server.js";
import type { GrpcJsService, RpcServer } from "../../src/toolkit/server/rpc-server.js";
import type { Engine } from "./support.js";

/** Where Debian's grpc-proto puts the protos (`apt-get install -y grpc-proto`). */
export const GRPC_PROTO_ROOT = "/usr/share/grpc-proto";
export const TEST_PROTO = "grpc/testing/test.proto";

/** Why the TestService cases cannot run here, or undefined when they can. */
export function missingGrpcProto(): string | undefined {
  return existsSync(path.join(GRPC_PROTO_ROOT, TEST_PROTO))
    ? undefined
    : `${GRPC_PROTO_ROOT}/${TEST_PROTO} is missing: install Debian's grpc-proto (apt-get install -y grpc-proto)`;
}

const ECHO_INITIAL = "x-grpc-test-echo-initial";
const ECHO_TRAILING = "x-grpc-test-echo-trailing-bin";

// The messages as proto-loader decodes them (keepCase, defaults: absent
// messages are null, bytes are Buffers).
interface Payload {
  readonly type?: string;
  readonly body: Buffer;
}
interface BoolValue {
  readonly value: boolean;
}
interface EchoStatus {
  readonly code: number;
  readonly message: string;
}
interface SimpleRequest {
  readonly response_size: number;
  readonly payload: Payload | null;
  readonly response_compressed: BoolValue | null;
  readonly response_status: EchoStatus | null;
  readonly expect_compressed: BoolValue | null;
}
interface ResponseParameters {
  readonly size: number;
  readonly interval_us: number;
}
interface StreamingOutputCallRequest {
  readonly response_parameters: readonly ResponseParameters[];
  readonly payload: Payload | null;
  readonly response_status: EchoStatus | null;
}
interface StreamingInputCallRequest {
  readonly payload: Payload | null;
}

/** The members of grpc-js's call objects these handlers use (the http2 engine's adapted calls have them too). */
interface Call extends NodeJS.EventEmitter {
  readonly metadata: grpc.Metadata;
  readonly cancelled: boolean;
  sendMetadata(metadata: grpc.Metadata): void;
}
interface UnaryCall<Req> extends Call {
  readonly request: Req;
}
interface WritableCall extends Call {
  write(message: unknown): boolean;
  end(trailer?: grpc.Metadata): void;
}
interface ServerStreamingCall<Req> extends WritableCall {
  readonly request: Req;
}
type Callback = (error: grpc.StatusObject | Partial<grpc.StatusObject> | null, value?: unknown, trailer?: grpc.Metadata) => void;

const COMPRESSABLE = "COMPRESSABLE";

function payloadOf(size: number): Payload {
  return { type: COMPRESSABLE, body: Buffer.alloc(size) };
}

/** Sends the echoed initial metadata, when asked for, and returns the trailing metadata to send at the end. */
function echo(call: Call): grpc.Metadata {
  const initial = call.metadata.get(ECHO_INITIAL);
  if (initial.length > 0) {
    const headers = new grpc.Metadata();
    for (const value of initial) headers.add(ECHO_INITIAL, value);
    call.sendMetadata(headers);
  }
  const trailer = new grpc.Metadata();
  for (const value of call.metadata.get(ECHO_TRAILING)) trailer.add(ECHO_TRAILING, value);
  return trailer;
}

function statusOf(status: EchoStatus, trailer: grpc.Metadata): Partial<grpc.StatusObject> {
  return { code: status.code, details: status.message, metadata: trailer };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes one response per parameter (after its interval), waiting for `drain`
 * when a write reports a full buffer, as a well-behaved grpc-js handler does;
 * stops when the call is cancelled.
 */
async function respond(call: WritableCall, request: StreamingOutputCallRequest): Promise<void> {
  for (const parameters of request.response_parameters) {
    if (parameters.interval_us > 0) await sleep(parameters.interval_us / 1000);
    if (call.cancelled) return;
    if (!call.write({ payload: payloadOf(parameters.size) })) await drained(call);
  }
}

/** Resolves at the call's next `drain`, or at once when it is cancelled meanwhile. */
function drained(call: WritableCall): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off("drain", done);
      call.off("cancelled", done);
      resolve();
    };
    call.once("drain", done);
    call.once("cancelled", done);
  });
}

/** What handlers saw that a client cannot check: a call reached its handler, or the handler learnt of a cancellation or deadline. */
export interface TestServiceEvent {
  readonly method: string;
  readonly kind: "started" | "cancelled";
  /** The call's `x-switchyard-case` metadata: which case of a client made it, when it says. */
  readonly case?: string;
}

/** Metadata a client may send to name the case a call belongs to, for assertions on what the server saw. */
export const CASE_HEADER = "x-switchyard-case";

function createImplementation(record: (event: TestServiceEvent) => void): Record<string, (call: never, callback: Callback) => void> {
  const watch = (method: string, call: Call): void => {
    const name = call.metadata.get(CASE_HEADER)[0];
    const tag = typeof name === "string" ? { case: name } : {};
    record({ method, kind: "started", ...tag });
    call.once("cancelled", () => record({ method, kind: "cancelled", ...tag }));
  };
  return {
    EmptyCall(call: UnaryCall<unknown>, callback: Callback) {
      const trailer = echo(call);
      callback(null, {}, trailer);
    },
    UnaryCall(call: UnaryCall<SimpleRequest>, callback: Callback) {
      watch("UnaryCall", call);
      unary(call, callback);
    },
    CacheableUnaryCall(call: UnaryCall<SimpleRequest>, callback: Callback) {
      unary(call, callback);
    },
    StreamingOutputCall(call: ServerStreamingCall<StreamingOutputCallRequest>) {
      watch("StreamingOutputCall", call);
      const trailer = echo(call);
      void respond(call, call.request).then(() => {
        if (call.cancelled) return;
        if (call.request.response_status !== null && call.request.response_status.code !== 0) {
          call.emit("error", statusOf(call.request.response_status, trailer));
        } else {
          call.end(trailer);
        }
      });
    },
    StreamingInputCall(call: Call, callback: Callback) {
      watch("StreamingInputCall", call);
      const trailer = echo(call);
      let size = 0;
      call.on("data", (request: StreamingInputCallRequest) => {
        size += request.payload?.body.length ?? 0;
      });
      call.on("end", () => callback(null, { aggregated_payload_size: size }, trailer));
    },
    FullDuplexCall(call: WritableCall) {
      watch("FullDuplexCall", call);
      const trailer = echo(call);
      // Each request is answered in order, after the previous one's responses.
      let queue = Promise.resolve();
      let failed = false;
      call.on("data", (request: StreamingOutputCallRequest) => {
        queue = queue.then(async () => {
          if (failed || call.cancelled) return;
          if (request.response_status !== null && request.response_status.code !== 0) {
            failed = true;
            call.emit("error", statusOf(request.response_status, trailer));
            return;
          }
          await respond(call, request);
        });
      });
      call.on("end", () => {
        void queue.then(() => {
          if (!failed && !call.cancelled) call.end(trailer);
        });
      });
    },
    HalfDuplexCall(call: WritableCall) {
      watch("HalfDuplexCall", call);
      const trailer = echo(call);
      const requests: StreamingOutputCallRequest[] = [];
      call.on("data", (request: StreamingOutputCallRequest) => requests.push(request));
      call.on("end", () => {
        void (async () => {
          for (const request of requests) await respond(call, request);
          if (!call.cancelled) call.end(trailer);
        })();
      });
    },
    // UnimplementedCall is left out on purpose: the server answers UNIMPLEMENTED.
  };
}

function unary(call: UnaryCall<SimpleRequest>, callback: Callback): void {
  const request = call.request;
  const trailer = echo(call);
  if (request.response_status !== null && request.response_status.code !== 0) {
    callback(statusOf(request.response_status, trailer));
    return;
  }
  // expect_compressed is not checked: grpc-js's handler API (which the http2
  // engine's adapter mirrors) does not say whether a message arrived
  // compressed, so the cases do not send the uncompressed "probe".
  callback(null, { payload: payloadOf(request.response_size) }, trailer);
}

let definition: grpc.ServiceDefinition | undefined;

/**
 * TestService's definition (from Debian's grpc-proto) and an implementation
 * that reports to `record`, for `grpcJsServices`.
 */
export function testService(record: (event: TestServiceEvent) => void = () => undefined): GrpcJsService {
  const missing = missingGrpcProto();
  if (missing !== undefined) throw new Error(missing);
  if (definition === undefined) {
    const definitions = protoLoader.loadSync(TEST_PROTO, {
      includeDirs: [GRPC_PROTO_ROOT],
      keepCase: true,
      defaults: true,
      enums: String,
      longs: Number,
    });
    definition = definitions["grpc.testing.TestService"] as grpc.ServiceDefinition;
  }
  return { definition, implementation: createImplementation(record) as unknown as grpc.UntypedServiceImplementation };
}

/** A server hosting only TestService (with health and reflection, as every server has). */
export interface TestServiceServer {
  readonly engine: Engine;
  readonly address: string;
  /** What handlers saw, in order. */
  readonly events: readonly TestServiceEvent[];
  /**
   * Resolves at the first event from index `since` on (default 0) that
   * satisfies `match`; rejects, listing the events seen, when none has after `timeoutMs` (default 5 s).
   */
  waitFor(match: (event: TestServiceEvent) => boolean, since?: number, timeoutMs?: number): Promise<TestServiceEvent>;
  close(): Promise<void>;
}

/** Starts TestService on `engine`, on a free port of 127.0.0.1. */
export async function startTestServiceServer(engine: Engine): Promise<TestServiceServer> {
  const events: TestServiceEvent[] = [];
  const waiters = new Set<() => boolean>();
  const record = (event: TestServiceEvent): void => {
    events.push(event);
    for (const waiter of waiters) if (waiter()) waiters.delete(waiter);
  };
  const options = { logger: silentLogger(), drainTimeoutMs: 1_000, grpcJsServices: [testService(record)] };
  const server: RpcServer = engine === "http2" ? createHttp2RpcServer(options) : createRpcServer(options);
  const port = await server.listen("127.0.0.1:0");
  return {
    engine,
    address: `127.0.0.1:${port}`,
    events,
    waitFor: (match, since = 0, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event within ${timeoutMs} ms; saw ${JSON.stringify(events.slice(since))}`));
        }, timeoutMs);
        const check = (): boolean => {
          const event = events.slice(since).find(match);
          if (event === undefined) return false;
          clearTimeout(timer);
          resolve(event);
          return true;
        };
        if (!check()) waiters.add(check);
      }),
    close: () => server.shutdown(),
  };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { engine: { type: "string", default: "http2" }, port: { type: "string", default: "0" } } });
  const engine: Engine = values.engine === "grpc-js" ? "grpc-js" : "http2";
  const options = { logger: silentLogger(), drainTimeoutMs: 1_000, grpcJsServices: [testService()] };
  const server = engine === "http2" ? createHttp2RpcServer(options) : createRpcServer(options);
  const port = await server.listen(`127.0.0.1:${values.port}`);
  console.log(`TestService on the ${engine} engine listening on 127.0.0.1:${port}`);
  const stop = (): void => void server.shutdown().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
