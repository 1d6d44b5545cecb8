/**
 * Interoperability with @grpc/grpc-js's client, a gRPC client we did not
 * write, on both server engines: each behaviour must hold on the node:http2
 * engine as it does on grpc-js's own server.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { decodeStatusDetails, STATUS_DETAILS_KEY } from "../../src/toolkit/rpc/status-details.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import {
  createUser,
  ENGINES,
  failure,
  GET_USER,
  getUser,
  rawCall,
  startTestServer,
  success,
  type TestServer,
  UNICODE_MESSAGE,
} from "./support.js";

const MAX_RECEIVE = 1024 * 1024;

function detailsOf(error: grpc.ServiceError) {
  const trailer = error.metadata.get(STATUS_DETAILS_KEY)[0];
  assert.ok(trailer instanceof Buffer, "grpc-status-details-bin is present");
  return decodeStatusDetails(trailer, error.code as number as Code);
}

for (const engine of ENGINES) {
  describe(`@grpc/grpc-js client against the ${engine} engine`, () => {
    let server: TestServer;
    let client: grpc.Client;
    const clients: grpc.Client[] = [];
    const newClient = (options: grpc.ChannelOptions = {}): grpc.Client => {
      const created = new grpc.Client(server.address, grpc.credentials.createInsecure(), options);
      clients.push(created);
      return created;
    };

    before(async () => {
      server = await startTestServer(engine, { maxReceiveMessageBytes: MAX_RECEIVE });
      client = newClient();
    });
    after(async () => {
      for (const c of clients) c.close();
      await server.close();
    });

    it("answers a unary call", async () => {
      assert.deepEqual(success(await getUser(client, "u1")), { name: "Ada", email: "ada@example.com", userId: "u1" });
      assert.deepEqual(success(await createUser(client, { userId: "u2", name: "Grace", email: "g@example.com" })), {
        name: "5",
        email: "g@example.com",
        userId: "u2",
      });
    });

    it("answers many concurrent calls on one connection", async () => {
      const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => getUser(client, `user-${i}`)));
      outcomes.forEach((outcome, i) => assert.equal(success(outcome).userId, `user-${i}`));
    });

    it("sends NOT_FOUND with its message and google.rpc.Status details", async () => {
      const error = failure(await getUser(client, "missing"));
      assert.equal(error.code, grpc.status.NOT_FOUND);
      assert.equal(error.details, 'no user with id "missing"');
      const details = detailsOf(error);
      assert.equal(details?.reason, "USER_NOT_FOUND");
      assert.deepEqual(details?.metadata, { userId: "missing" });
    });

    it("sends field violations as google.rpc.BadRequest", async () => {
      const error = failure(await getUser(client, "invalid"));
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.deepEqual(detailsOf(error)?.fieldViolations, [{ field: "user_id", description: 'must not be "invalid"' }]);
    });

    it("percent-encodes grpc-message so that any message arrives intact", async () => {
      const error = failure(await getUser(client, "unicode"));
      assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
      assert.equal(error.details, UNICODE_MESSAGE);
    });

    it("passes text and -bin metadata to the handler, without the protocol's own headers", async () => {
      const metadata = new grpc.Metadata();
      metadata.set("x-request-id", "abc-123");
      metadata.set("x-trace-bin", Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x80]));
      const response = success(await getUser(client, "metadata", { metadata, deadline: new Date(Date.now() + 5_000) }));
      const seen = JSON.parse(response.name) as Record<string, string>;
      assert.equal(seen["x-request-id"], "abc-123");
      assert.equal(seen["x-trace-bin"], "hex:0001feff80");
      assert.match(seen["user-agent"] ?? "", /grpc-node-js/);
      for (const reserved of ["grpc-timeout", "content-type", "te", "grpc-accept-encoding", "grpc-encoding", ":path", ":authority"]) {
        assert.equal(seen[reserved], undefined, `${reserved} is not metadata`);
      }
    });

    it("gives the handler the caller's deadline", async () => {
      const left = Number(success(await getUser(client, "deadline", { deadline: new Date(Date.now() + 3_000) })).email);
      assert.ok(left > 2_000 && left <= 3_000, `deadline ${left} ms away`);
      assert.equal(success(await getUser(client, "deadline")).email, "none");
    });

    it("answers DEADLINE_EXCEEDED when the deadline passes, and aborts the handler's signal", async () => {
      const since = server.events.length;
      const started = Date.now();
      const error = failure(await getUser(client, "slow", { deadline: new Date(Date.now() + 500) }));
      assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(Date.now() - started < 3_000);
      await server.nextEvent("slow", "started", since);
      const event = await server.nextEvent("slow", "aborted", since);
      assert.ok(event.kind === "aborted");
      // The client's own deadline timer resets the stream at about the same
      // time as the server's fires; whichever is first names the cause (and
      // grpc-js's server calls both a cancellation). test/unit/http2-engine
      // checks the server's timer alone.
      assert.ok([Code.DEADLINE_EXCEEDED, Code.CANCELLED].includes(event.code), `aborted with ${event.code}`);
    });

    it("aborts the handler's signal when the client cancels", async () => {
      const since = server.events.length;
      const error = failure(await getUser(client, "slow", { cancelWhen: server.nextEvent("slow", "started", since) }));
      assert.equal(error.code, grpc.status.CANCELLED);
      const event = await server.nextEvent("slow", "aborted", since);
      assert.deepEqual(event, { userId: "slow", kind: "aborted", code: Code.CANCELLED });
    });

    for (const [name, algorithm] of [
      ["gzip", 2],
      ["deflate", 1],
    ] as const) {
      it(`accepts ${name}-compressed requests (grpc.default_compression_algorithm)`, async () => {
        const compressing = newClient({ "grpc.default_compression_algorithm": algorithm });
        const name300k = "ab".repeat(150_000);
        assert.equal(success(await createUser(compressing, { userId: "z", name: name300k, email: "z@example.com" })).name, "300000");
        assert.equal(success(await getUser(compressing, "u1")).name, "Ada");
      });
    }

    it("caps the decompressed size of a compressed request too", async () => {
      const compressing = newClient({ "grpc.default_compression_algorithm": 2 });
      // Compresses to a few kB, inflates past the 1 MiB limit.
      const error = failure(await createUser(compressing, { userId: "bomb", name: "a".repeat(3 * MAX_RECEIVE), email: "" }));
      assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED);
    });

    it("takes large messages up to the limit and refuses larger ones with RESOURCE_EXHAUSTED", async () => {
      assert.equal(success(await createUser(client, { userId: "l", name: "n".repeat(MAX_RECEIVE - 100), email: "" })).name, String(MAX_RECEIVE - 100));
      const error = failure(await createUser(client, { userId: "l", name: "n".repeat(2 * MAX_RECEIVE), email: "" }));
      assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED);
      // The connection is still good afterwards.
      assert.equal(success(await getUser(client, "u1")).name, "Ada");
    });

    it("refuses request metadata over 16 KiB with RESOURCE_EXHAUSTED; 4 KiB is fine", async () => {
      const big = new grpc.Metadata();
      big.set("x-padding", "p".repeat(32 * 1024));
      assert.equal(failure(await getUser(client, "u1", { metadata: big })).code, grpc.status.RESOURCE_EXHAUSTED);
      const fine = new grpc.Metadata();
      fine.set("x-padding", "p".repeat(4 * 1024));
      assert.equal(success(await getUser(client, "u1", { metadata: fine })).name, "Ada");
    });

    it("sends large responses", async () => {
      assert.equal(success(await getUser(client, "big:3000000")).name.length, 3_000_000);
    });

    it("answers UNIMPLEMENTED for an unknown method or service", async () => {
      assert.equal(failure(await rawCall(client, "/service.UserService/Nope", Buffer.alloc(0))).code, grpc.status.UNIMPLEMENTED);
      assert.equal(failure(await rawCall(client, "/nope.Nothing/Get", Buffer.alloc(0))).code, grpc.status.UNIMPLEMENTED);
    });

    it("answers INVALID_ARGUMENT for a body that is not the request message", async () => {
      const error = failure(await rawCall(client, GET_USER, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])));
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(detailsOf(error)?.reason, "MALFORMED_REQUEST");
    });

    it("serves grpc.health.v1 Check", async () => {
      const check = (service: string) =>
        new Promise<{ error: grpc.ServiceError | null; value: unknown }>((resolve) => {
          client.makeUnaryRequest(
            healthService.Check.path,
            healthService.Check.requestSerialize,
            healthService.Check.responseDeserialize,
            { service },
            (error, value) => resolve({ error, value }),
          );
        });
      assert.deepEqual((await check("")).value, { status: "SERVING" });
      assert.deepEqual((await check("service.UserService")).value, { status: "SERVING" });
      assert.equal((await check("nope.Nothing")).error?.code, grpc.status.NOT_FOUND);
    });

    it("serves grpc.health.v1 Watch as a server stream that follows changes", async () => {
      const call = client.makeServerStreamRequest(
        healthService.Watch.path,
        healthService.Watch.requestSerialize,
        healthService.Watch.responseDeserialize,
        { service: "service.UserService" },
      );
      const statuses: unknown[] = [];
      call.on("data", (message: { status: string }) => statuses.push(message.status));
      call.on("error", () => undefined);
      await waitFor(() => statuses.length >= 1 || undefined);
      server.server.health.setServing("service.UserService", false);
      await waitFor(() => statuses.length >= 2 || undefined);
      server.server.health.setServing("service.UserService", true);
      await waitFor(() => statuses.length >= 3 || undefined);
      assert.deepEqual(statuses, ["SERVING", "NOT_SERVING", "SERVING"]);
      call.cancel();
    });
  });
}

for (const engine of ENGINES) {
  describe(`shutdown of the ${engine} engine, seen by @grpc/grpc-js clients`, () => {
    it("lets calls in flight finish, then refuses new connections", async () => {
      const server = await startTestServer(engine, { drainTimeoutMs: 5_000 });
      const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
      try {
        success(await getUser(client, "warm-up"));
        const inFlight = getUser(client, "sleep:300");
        await server.nextEvent("sleep:300", "started");
        const started = Date.now();
        await server.close();
        assert.ok(Date.now() - started < 4_000, "shutdown did not wait for the drain timeout");
        assert.equal(success(await inFlight).name, "Ada");
        const late = new grpc.Client(server.address, grpc.credentials.createInsecure());
        assert.equal(failure(await getUser(late, "u1", { deadline: new Date(Date.now() + 1_000) })).code, grpc.status.UNAVAILABLE);
        late.close();
      } finally {
        client.close();
      }
    });

    it("cancels what is still running at the drain timeout", async () => {
      const server = await startTestServer(engine, { drainTimeoutMs: 300 });
      const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
      try {
        const inFlight = getUser(client, "slow");
        await server.nextEvent("slow", "started");
        const started = Date.now();
        await server.close();
        assert.ok(Date.now() - started < 2_000);
        const error = failure(await inFlight);
        assert.ok([grpc.status.CANCELLED, grpc.status.UNAVAILABLE, grpc.status.INTERNAL].includes(error.code), `got ${error.code}`);
        assert.deepEqual(await server.nextEvent("slow", "aborted"), { userId: "slow", kind: "aborted", code: Code.CANCELLED });
      } finally {
        client.close();
      }
    });
  });
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
