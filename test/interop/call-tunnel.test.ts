/**
 * The call tunnel (proto/switchyard/tunnel/v1) over real sockets: what
 * travels in it and what does not, how a draining server hands its callers
 * over to another endpoint, its limits, and what the server answers a
 * client that breaks the tunnel's protocol. The behaviour every call keeps
 * through the tunnel (statuses, metadata, deadlines, cancellation, retries,
 * keepalive, TLS) is checked by http2-client.test.ts, which runs with the
 * tunnel on and off.
 */
import assert from "node:assert/strict";
import http2, { type IncomingHttpHeaders } from "node:http2";
import { after, describe, it } from "node:test";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { OpenRequest, OpenResponse } from "../../src/gen/switchyard/tunnel/v1/tunnel.js";
import type { CallAttempt } from "../../src/toolkit/client/call-attempt-observer.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { CallTunnel } from "../../src/toolkit/client/http2/call-tunnel.js";
import { createHttp2Transport } from "../../src/toolkit/client/http2/http2-transport.js";
import type { AttemptResult } from "../../src/toolkit/client/http2/unary-attempt.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { TUNNEL_PATH } from "../../src/toolkit/wire/call-tunnel.js";
import { MessageReader } from "../../src/toolkit/wire/message-reader.js";
import { encodeFrame, encodeMessage } from "../../src/toolkit/wire/protocol.js";
import { UserRequest, UserResponse } from "../../src/gen/service/v1/service.js";
import { Cleanup } from "../support/cli-process.js";
import { type Engine, GET_USER, startTestServer, type TestServer, type TestServerOptions, rejection } from "./support.js";

/** A tunnel opened by hand, to send it frames our client would not. */
function openRaw(session: http2.ClientHttp2Session) {
  const stream = session.request({ ":method": "POST", ":path": TUNNEL_PATH, "content-type": "application/grpc", te: "trailers" });
  const answers: OpenResponse[] = [];
  const reader = new MessageReader(1 << 20, undefined, (frame) => answers.push(OpenResponse.decode(frame)), "response");
  stream.on("data", (chunk: Buffer) => reader.push(chunk));
  const send = (callId: number, method: string, userId: string): void =>
    void stream.write(
      encodeFrame(OpenRequest, { callId, method, timeoutMs: 5_000, metadata: {}, message: encodeMessage(UserRequest, { userId }), cancel: false }),
    );
  return { stream, answers, send };
}

/** Our client's end of a tunnel, once the server accepted it. */
function openTunnel(session: http2.ClientHttp2Session): Promise<CallTunnel> {
  return new Promise((resolve, reject) => {
    const opening: CallTunnel = new CallTunnel(session, TUNNEL_SETTINGS, {
      opened: () => resolve(opening),
      closed: () => reject(new Error("the tunnel closed before it opened")),
    });
  });
}

const TUNNEL_SETTINGS = { authority: "localhost", scheme: "http", userAgent: "test", maxReceiveBytes: 4 * 1024 * 1024 } as const;

describe("the call tunnel", () => {
  const scope = new Cleanup();
  after(() => scope.run());
  const start = async (engine: Engine = "http2", options: TestServerOptions = {}): Promise<TestServer> => {
    const server = await startTestServer(engine, options);
    scope.after(() => server.close());
    return server;
  };
  /** A UserService client with the tunnel on, and the attempts it made. */
  const tunneledUsers = (target: string, options: { retry?: boolean; maxReceiveMessageBytes?: number } = {}) => {
    const attempts: CallAttempt[] = [];
    const transport = createHttp2Transport({
      target,
      services: [UserServiceDefinition],
      tunnel: true,
      retry: (options.retry ?? true) && { initialBackoffMs: 5 },
      ...(options.maxReceiveMessageBytes === undefined ? {} : { maxReceiveMessageBytes: options.maxReceiveMessageBytes }),
      attemptObserver: { attemptStarted: (attempt) => void attempts.push(attempt) },
    });
    scope.after(() => transport.close());
    return { users: createClient(UserServiceDefinition, transport), attempts };
  };
  const connect = (server: TestServer): http2.ClientHttp2Session => {
    const session = http2.connect(`http://${server.address}`);
    scope.after(() => session.destroy());
    return session;
  };

  it("carries many calls on one HTTP/2 stream", async () => {
    const server = await start();
    const session = connect(server);
    const tunnel = await openTunnel(session);
    const results = await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) =>
          new Promise<AttemptResult>((resolve) =>
            tunnel.send(GET_USER, Date.now() + 5_000, {}, encodeMessage(UserRequest, { userId: `user-${i}` }), resolve),
          ),
      ),
    );
    results.forEach((result, i) => {
      assert.equal(result.code, Code.OK);
      assert.equal(UserResponse.decode(result.response as Buffer).userId, `user-${i}`);
    });
    assert.equal(session.state.nextStreamID, 3, "stream 1, the tunnel, is the only one the session opened");
  });

  it("sends every call on a stream of its own to a server without tunnels, and large requests too", async () => {
    const ours = tunneledUsers((await start()).address);
    assert.equal((await ours.users.getUser({ userId: "u1" })).name, "Ada");
    const big = await ours.users.createUser({ userId: "big", name: "x".repeat(100_000), email: "big@example.com" });
    assert.equal(big.name, "100000");
    assert.deepEqual(
      ours.attempts.map((attempt) => attempt.tunneled),
      [true, false],
      "a request over 64 KiB does not hold up the tunnel's small calls",
    );
    const theirs = tunneledUsers((await start("grpc-js")).address);
    for (let i = 0; i < 3; i++) assert.equal((await theirs.users.getUser({ userId: "u1" })).name, "Ada");
    assert.deepEqual(
      theirs.attempts.map((attempt) => attempt.tunneled),
      [false, false, false],
    );
  });

  it("takes calls up to 90 % of the server's limit of 1024 at once; the calls beyond go on streams of their own", async () => {
    const { users, attempts } = tunneledUsers((await start()).address);
    await users.getUser({ userId: "u1" });
    const answers = await Promise.all(Array.from({ length: 1_100 }, () => users.getUser({ userId: "sleep:300" }, { timeoutMs: 10_000 })));
    assert.equal(answers.length, 1_100);
    // The margin leaves room for cancellations the server has not seen yet.
    assert.equal(attempts.slice(1).filter((attempt) => attempt.tunneled).length, Math.floor(1_024 * 0.9));
  });

  it("on shutdown answers the calls in flight, and moves new calls to the other endpoint without failing one", async () => {
    const leaving = await start("http2", { drainTimeoutMs: 10_000 });
    const staying = await start();
    const { users, attempts } = tunneledUsers(`static:///${leaving.address},${staying.address}`, { retry: false });
    // Both connections up (round robin alternates once each is ready).
    for (let i = 0; i < 10 && !attempts.some((attempt) => attempt.endpoint === leaving.address); i++) await users.getUser({ userId: "u1" });
    const inFlight = Array.from({ length: 20 }, () => users.getUser({ userId: "sleep:300" }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const began = Date.now();
    const stopped = leaving.close().then(() => Date.now() - began);
    // Retries are off: the calls the draining server refuses unrun are sent again all the same (a transparent retry).
    const during = await Promise.allSettled(Array.from({ length: 50 }, () => users.getUser({ userId: "u1" })));
    assert.deepEqual(during.filter((outcome) => outcome.status === "rejected"), [], "calls made while it drains all succeed");
    assert.equal((await Promise.all(inFlight)).length, 20);
    const took = await stopped;
    assert.ok(took < 2_000, `the server stopped once its calls were answered (${took} ms), not at its 10 s drain timeout`);
  });

  it("while it drains, refuses new calls unrun and ends the tunnel with OK once the calls in flight are answered", async () => {
    const server = await start("http2", { drainTimeoutMs: 10_000 });
    const { stream, answers, send } = openRaw(connect(server));
    const trailers = new Promise<IncomingHttpHeaders>((resolve) => stream.on("trailers", resolve));
    send(1, GET_USER, "sleep:300");
    await server.nextEvent("sleep:300", "started");
    const stopped = server.close();
    send(2, GET_USER, "u1");
    assert.equal((await trailers)["grpc-status"], String(Code.OK));
    assert.deepEqual(
      answers.map((answer) => [answer.callId, answer.code, answer.unprocessed]),
      [
        [2, Code.UNAVAILABLE, true],
        [1, Code.OK, false],
      ],
    );
    await stopped;
  });

  it("marks the calls a drained tunnel ended without an answer as never run", async () => {
    const server = await start();
    const tunnel = await openTunnel(connect(server));
    // Nothing in flight: the server ends the tunnel at once, before or after these arrive.
    const stopped = server.close();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => new Promise<AttemptResult>((resolve) => tunnel.send(GET_USER, Date.now() + 5_000, {}, encodeMessage(UserRequest, { userId: "u1" }), resolve))),
    );
    await stopped;
    for (const result of results) {
      assert.equal(result.code, Code.UNAVAILABLE);
      assert.equal(result.unprocessed, true, result.message);
    }
  });

  it("fails only the call whose response or metadata is over the limit, and the server's deadline cap applies", async () => {
    const server = await start("http2", { maxDeadlineMs: 300 });
    const { users, attempts } = tunneledUsers(server.address, { maxReceiveMessageBytes: 1_000 });
    await users.getUser({ userId: "u1" });
    const neighbour = users.getUser({ userId: "sleep:100" });
    const big = await rejection(users.getUser({ userId: "big:5000" }));
    assert.equal(big.code, Code.RESOURCE_EXHAUSTED);
    assert.match(big.message, /5\d{3} bytes, larger than the caller accepts \(1000 bytes\)/);
    const metadata = await rejection(users.getUser({ userId: "u1" }, { metadata: { "x-big": "m".repeat(20_000) } }));
    assert.equal(metadata.code, Code.RESOURCE_EXHAUSTED);
    assert.match(metadata.message, /metadata is \d+ bytes, larger than this server accepts/);
    assert.equal((await neighbour).name, "Ada", "the call beside them was not touched");
    const began = Date.now();
    const capped = await rejection(users.getUser({ userId: "slow-cap" }, { timeoutMs: 5_000 }));
    assert.equal(capped.code, Code.DEADLINE_EXCEEDED);
    assert.equal(capped.reason, "MAX_DEADLINE_EXCEEDED");
    assert.ok(Date.now() - began < 1_500, `ended by the 300 ms cap, after ${Date.now() - began} ms`);
    assert.ok(attempts.slice(1).every((attempt) => attempt.tunneled), "every call went through the one tunnel");
  });

  it("ends a tunnel whose client breaks its protocol with INTERNAL, and keeps serving", async () => {
    const server = await start();
    for (const [frames, expected] of [
      [[Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff])], /not a valid switchyard.tunnel.v1.OpenRequest/],
      [
        [
          encodeFrame(OpenRequest, { callId: 7, method: GET_USER, timeoutMs: 5_000, metadata: {}, message: encodeMessage(UserRequest, { userId: "slow" }), cancel: false }),
          encodeFrame(OpenRequest, { callId: 7, method: GET_USER, timeoutMs: 5_000, metadata: {}, message: encodeMessage(UserRequest, { userId: "u1" }), cancel: false }),
        ],
        /reused call id 7/,
      ],
    ] as const) {
      const session = connect(server);
      const stream = session.request({ ":method": "POST", ":path": TUNNEL_PATH, "content-type": "application/grpc", te: "trailers" });
      const trailers = new Promise<IncomingHttpHeaders>((resolve) => stream.on("trailers", resolve));
      stream.resume();
      for (const frame of frames) stream.write(frame);
      const ended = await trailers;
      assert.equal(ended["grpc-status"], String(Code.INTERNAL));
      assert.match(decodeURIComponent(String(ended["grpc-message"])), expected);
    }
    const { users } = tunneledUsers(server.address);
    assert.equal((await users.getUser({ userId: "u1" })).name, "Ada");
  });

  it("answers an unknown method UNIMPLEMENTED and a cancelled call not at all, in the same tunnel", async () => {
    const server = await start();
    const { stream, answers, send } = openRaw(connect(server));
    const since = server.events.length;
    send(1, "/service.UserService/Nope", "u1");
    send(2, GET_USER, "slow-tunnel");
    await server.nextEvent("slow-tunnel", "started", since);
    stream.write(encodeFrame(OpenRequest, { callId: 2, method: "", timeoutMs: 0, metadata: {}, message: Buffer.alloc(0), cancel: true }));
    const aborted = await server.nextEvent("slow-tunnel", "aborted", since);
    assert.ok(aborted.kind === "aborted" && aborted.code === Code.CANCELLED);
    send(3, GET_USER, "u1");
    while (answers.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(
      answers.map((answer) => [answer.callId, answer.code]),
      [
        [1, Code.UNIMPLEMENTED],
        [3, Code.OK],
      ],
    );
    assert.match(answers[0]?.statusMessage ?? "", /Nope is not implemented/);
  });
});
