/**
 * The grpc.testing.TestService interop cases with @grpc/grpc-js's client, the
 * same cases and order as testservice_client.py and go-testservice/main.go,
 * for testservice.test.ts. Requests are encoded with the proto-loader
 * definitions of Debian's protos (test-service.ts).
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { CASE_HEADER, GRPC_PROTO_ROOT, TEST_PROTO } from "./test-service.js";

/** One case's outcome, as the Python and Go clients print it. */
export interface CaseResult {
  readonly case: string;
  readonly ok: boolean;
  readonly detail: unknown;
}

interface Payload {
  readonly body: Buffer;
}
interface WithPayload {
  readonly payload: Payload | null;
}

const SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n";
const TRAILING_VALUE = Buffer.from([0xab, 0xab, 0xab]);

function fail(message: string): never {
  throw new Error(message);
}

function check(condition: boolean, message: string): void {
  if (!condition) fail(message);
}

function checkPayload(response: WithPayload | undefined, size: number): void {
  const body = response?.payload?.body;
  check(body !== undefined && body.length === size, `payload of ${body?.length ?? "no"} bytes, expected ${size}`);
  check((body as Buffer).equals(Buffer.alloc(size)), "payload is not all zeros");
}

const zeros = (size: number): { type: string; body: Buffer } => ({ type: "COMPRESSABLE", body: Buffer.alloc(size) });
const deadline = (ms = 10_000): { deadline: Date } => ({ deadline: new Date(Date.now() + ms) });

interface StreamOutcome<T> {
  readonly messages: T[];
  readonly error: grpc.ServiceError | undefined;
  readonly status: grpc.StatusObject | undefined;
  readonly headers: grpc.Metadata | undefined;
}

/** Reads a response stream to its end. */
function collect<T>(call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<object, T>): Promise<StreamOutcome<T>> {
  return new Promise((resolve) => {
    const messages: T[] = [];
    let headers: grpc.Metadata | undefined;
    let error: grpc.ServiceError | undefined;
    call.on("metadata", (metadata: grpc.Metadata) => (headers = metadata));
    call.on("data", (message: T) => messages.push(message));
    call.on("error", (e: grpc.ServiceError) => (error = e));
    // `status` comes last, after `end` or `error`.
    call.on("status", (status: grpc.StatusObject) => resolve({ messages, error, status, headers }));
  });
}

function expectStatus(error: grpc.ServiceError | null | undefined, code: grpc.status, message?: string): void {
  check(error !== null && error !== undefined, `the call succeeded; expected status ${code}`);
  const e = error as grpc.ServiceError;
  check(e.code === code, `status ${e.code} (${e.details}), expected ${code}`);
  if (message !== undefined) check(e.details === message, `message ${JSON.stringify(e.details)}, expected ${JSON.stringify(message)}`);
}

/** Runs every case against `address`; never throws for a failed case. */
export async function runGrpcJsCases(address: string): Promise<CaseResult[]> {
  const definitions = protoLoader.loadSync(TEST_PROTO, { includeDirs: [GRPC_PROTO_ROOT], keepCase: true, defaults: true, enums: String, longs: Number });
  const service = definitions["grpc.testing.TestService"] as grpc.ServiceDefinition;
  const unimplementedService = definitions["grpc.testing.UnimplementedService"] as grpc.ServiceDefinition;
  const m = <Res>(name: string, from: grpc.ServiceDefinition = service): grpc.MethodDefinition<object, Res> =>
    from[name] as grpc.MethodDefinition<object, Res>;
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 8 << 20 });
  const gzipClient = new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 8 << 20,
    "grpc.default_compression_algorithm": grpc.compressionAlgorithms.gzip,
  });

  const unary = <Res>(
    name: string,
    request: object,
    options: { metadata?: grpc.Metadata; via?: grpc.Client; from?: grpc.ServiceDefinition } = {},
  ): Promise<{ error: grpc.ServiceError | null; value: Res | undefined; headers: grpc.Metadata | undefined; status: grpc.StatusObject | undefined }> =>
    new Promise((resolve) => {
      const method = m<Res>(name, options.from);
      let headers: grpc.Metadata | undefined;
      let result: { error: grpc.ServiceError | null; value: Res | undefined } | undefined;
      const call = (options.via ?? client).makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        options.metadata ?? new grpc.Metadata(),
        deadline(),
        (error, value) => (result = { error, value }),
      );
      call.on("metadata", (metadata: grpc.Metadata) => (headers = metadata));
      call.on("status", (status: grpc.StatusObject) => setImmediate(() => resolve({ ...(result ?? { error: null, value: undefined }), headers, status })));
    });
  const duplex = <Res>(name: string, metadata = new grpc.Metadata(), options: grpc.CallOptions = deadline()): grpc.ClientDuplexStream<object, Res> => {
    const method = m<Res>(name);
    return client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, metadata, options);
  };
  const clientStreaming = (via: grpc.Client, sizes: readonly number[]): Promise<{ error: grpc.ServiceError | null; value: { aggregated_payload_size: number } | undefined }> =>
    new Promise((resolve) => {
      const method = m<{ aggregated_payload_size: number }>("StreamingInputCall");
      const call = via.makeClientStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new grpc.Metadata(), deadline(), (error, value) =>
        resolve({ error, value }),
      );
      for (const size of sizes) call.write({ payload: zeros(size) });
      call.end();
    });

  const cases: Record<string, () => Promise<void>> = {
    async empty_unary() {
      const { error, value } = await unary<object>("EmptyCall", {});
      check(error === null && value !== undefined, `failed: ${error?.code} ${error?.details}`);
    },
    async large_unary() {
      const { error, value } = await unary<WithPayload>("UnaryCall", { response_size: 314159, payload: zeros(271828) });
      check(error === null, `failed: ${error?.code} ${error?.details}`);
      checkPayload(value, 314159);
    },
    async client_compressed_unary() {
      // Without the probe: see docs/interop.md.
      for (const compressed of [true, false]) {
        const request = { response_size: 314159, payload: zeros(271828), expect_compressed: { value: compressed } };
        const { error, value } = await unary<WithPayload>("UnaryCall", request, { via: compressed ? gzipClient : client });
        check(error === null, `compressed=${compressed}: ${error?.code} ${error?.details}`);
        checkPayload(value, 314159);
      }
    },
    async server_compressed_unary() {
      for (const compressed of [true, false]) {
        const request = { response_size: 314159, payload: zeros(271828), response_compressed: { value: compressed } };
        const { error, value } = await unary<WithPayload>("UnaryCall", request);
        check(error === null, `response_compressed=${compressed}: ${error?.code} ${error?.details}`);
        checkPayload(value, 314159);
      }
    },
    async client_streaming() {
      const { error, value } = await clientStreaming(client, [27182, 8, 1828, 45904]);
      check(error === null, `failed: ${error?.code} ${error?.details}`);
      check(value?.aggregated_payload_size === 74922, `aggregated_payload_size ${value?.aggregated_payload_size}`);
    },
    async client_compressed_streaming() {
      const { error, value } = await clientStreaming(gzipClient, [27182, 45904]);
      check(error === null, `failed: ${error?.code} ${error?.details}`);
      check(value?.aggregated_payload_size === 73086, `aggregated_payload_size ${value?.aggregated_payload_size}`);
    },
    async server_streaming() {
      const sizes = [31415, 9, 2653, 58979];
      const method = m<WithPayload>("StreamingOutputCall");
      const call = client.makeServerStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        { response_parameters: sizes.map((size) => ({ size })) },
        new grpc.Metadata(),
        deadline(),
      );
      const { messages, error } = await collect(call);
      check(error === undefined, `failed: ${error?.code} ${error?.details}`);
      check(messages.length === sizes.length, `${messages.length} responses`);
      sizes.forEach((size, i) => checkPayload(messages[i], size));
    },
    async ping_pong() {
      const sizes = [31415, 9, 2653, 58979];
      const payloads = [27182, 8, 1828, 45904];
      const call = duplex<WithPayload>("FullDuplexCall");
      const outcome = collect(call);
      const responses: WithPayload[] = [];
      let next: ((message: WithPayload) => void) | undefined;
      call.on("data", (message: WithPayload) => (next === undefined ? responses.push(message) : next(message)));
      for (const [i, size] of sizes.entries()) {
        call.write({ response_parameters: [{ size }], payload: zeros(payloads[i] as number) });
        const response = responses.shift() ?? (await new Promise<WithPayload>((resolve) => (next = resolve)));
        next = undefined;
        checkPayload(response, size);
      }
      call.end();
      const { messages, error } = await outcome;
      check(error === undefined, `failed: ${error?.code} ${error?.details}`);
      check(messages.length === sizes.length, `${messages.length} responses`);
    },
    async empty_stream() {
      const call = duplex<WithPayload>("FullDuplexCall");
      const outcome = collect(call);
      call.end();
      const { messages, error } = await outcome;
      check(error === undefined && messages.length === 0, `${messages.length} responses, error ${error?.code}`);
    },
    async half_duplex() {
      const sizes = [31415, 9, 2653];
      const call = duplex<WithPayload>("HalfDuplexCall");
      const outcome = collect(call);
      for (const size of sizes) call.write({ response_parameters: [{ size }], payload: zeros(8) });
      call.end();
      const { messages, error } = await outcome;
      check(error === undefined, `failed: ${error?.code} ${error?.details}`);
      check(messages.length === sizes.length, `${messages.length} responses`);
      sizes.forEach((size, i) => checkPayload(messages[i], size));
    },
    async custom_metadata() {
      const metadata = (): grpc.Metadata => {
        const md = new grpc.Metadata();
        md.set("x-grpc-test-echo-initial", "test_initial_metadata_value");
        md.set("x-grpc-test-echo-trailing-bin", TRAILING_VALUE);
        return md;
      };
      const checkEcho = (headers: grpc.Metadata | undefined, trailers: grpc.Metadata | undefined, what: string): void => {
        check(headers?.get("x-grpc-test-echo-initial")[0] === "test_initial_metadata_value", `${what}: initial metadata ${JSON.stringify(headers?.getMap())}`);
        const trailing = trailers?.get("x-grpc-test-echo-trailing-bin")[0];
        check(trailing instanceof Buffer && trailing.equals(TRAILING_VALUE), `${what}: trailing metadata ${JSON.stringify(trailers?.getMap())}`);
      };
      const result = await unary<WithPayload>("UnaryCall", { response_size: 314159, payload: zeros(271828) }, { metadata: metadata() });
      check(result.error === null, `UnaryCall: ${result.error?.code} ${result.error?.details}`);
      checkPayload(result.value, 314159);
      checkEcho(result.headers, result.status?.metadata, "UnaryCall");
      const call = duplex<WithPayload>("FullDuplexCall", metadata());
      const outcome = collect(call);
      call.write({ response_parameters: [{ size: 314159 }], payload: zeros(271828) });
      call.end();
      const { messages, error, status, headers } = await outcome;
      check(error === undefined && messages.length === 1, `FullDuplexCall: ${messages.length} responses, error ${error?.code}`);
      checkPayload(messages[0], 314159);
      checkEcho(headers, status?.metadata, "FullDuplexCall");
    },
    async status_code_and_message() {
      await echoStatus("test status message");
    },
    async special_status_message() {
      await echoStatus(SPECIAL_MESSAGE);
    },
    async unimplemented_method() {
      expectStatus((await unary<object>("UnimplementedCall", {})).error, grpc.status.UNIMPLEMENTED);
    },
    async unimplemented_service() {
      expectStatus((await unary<object>("UnimplementedCall", {}, { from: unimplementedService })).error, grpc.status.UNIMPLEMENTED);
    },
    async cancel_after_begin() {
      const method = m<object>("StreamingInputCall");
      const outcome = new Promise<grpc.ServiceError | null>((resolve) => {
        const call = client.makeClientStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new grpc.Metadata(), deadline(), (error) =>
          resolve(error),
        );
        call.cancel();
      });
      expectStatus(await outcome, grpc.status.CANCELLED);
    },
    async cancel_after_first_response() {
      const metadata = new grpc.Metadata();
      metadata.set(CASE_HEADER, "cancel_after_first_response");
      const call = duplex<WithPayload>("FullDuplexCall", metadata);
      const outcome = collect(call);
      const first = new Promise<WithPayload>((resolve) => call.once("data", resolve));
      call.write({ response_parameters: [{ size: 31415 }], payload: zeros(27182) });
      checkPayload(await first, 31415);
      call.cancel();
      const { error } = await outcome;
      expectStatus(error, grpc.status.CANCELLED);
    },
    async timeout_on_sleeping_server() {
      const call = duplex<WithPayload>("FullDuplexCall", new grpc.Metadata(), deadline(1));
      const outcome = collect(call);
      call.write({ payload: zeros(27182) });
      const { error } = await outcome;
      expectStatus(error, grpc.status.DEADLINE_EXCEEDED);
    },
    // Not in the interop spec: the server ends a bidi call with a status while
    // the client is still sending, after a response larger than the initial
    // flow-control window. The status must arrive, not a reset.
    async early_status_bidi() {
      const call = duplex<WithPayload>("FullDuplexCall");
      const outcome = collect(call);
      const first = new Promise<WithPayload>((resolve) => call.once("data", resolve));
      call.write({ response_parameters: [{ size: 70000 }], payload: zeros(10) });
      checkPayload(await first, 70000);
      call.write({ response_status: { code: grpc.status.ABORTED, message: "stop here" } });
      const { error } = await outcome;
      call.end();
      expectStatus(error, grpc.status.ABORTED, "stop here");
    },
  };

  async function echoStatus(message: string): Promise<void> {
    const status = { code: grpc.status.UNKNOWN, message };
    expectStatus((await unary<object>("UnaryCall", { response_status: status })).error, grpc.status.UNKNOWN, message);
    const call = duplex<WithPayload>("FullDuplexCall");
    const outcome = collect(call);
    call.write({ response_status: status });
    call.end();
    expectStatus((await outcome).error, grpc.status.UNKNOWN, message);
  }

  const results: CaseResult[] = [];
  try {
    for (const [name, run] of Object.entries(cases)) {
      try {
        await run();
        results.push({ case: name, ok: true, detail: null });
      } catch (error) {
        results.push({ case: name, ok: false, detail: error instanceof Error ? error.message : String(error) });
      }
    }
  } finally {
    client.close();
    gzipClient.close();
  }
  return results;
}
