/**
 * The lean node:http2 client (createHttp2Transport) against both server
 * engines — grpc-js's own server, which we did not write, and ours — and
 * against raw node:http2 servers that answer what a gRPC server should not
 * (HTTP errors, wrong content types, resets), over real sockets: statuses
 * and details, metadata, deadlines and cancellation seen by the handler,
 * message limits, retries, round robin, outlier detection, GOAWAY, TLS —
 * and against Python's grpcio server (the gRPC C core, python_server.py).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { UserResponse, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createHttp2Transport, type Http2TransportOptions } from "../../src/toolkit/client/http2/http2-transport.js";
import type { Transport } from "../../src/toolkit/client/transport.js";
import type { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { Metadata } from "../../src/toolkit/rpc/metadata.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { loadClientTls } from "../../src/toolkit/tls/client-tls.js";
import { loadServerTls } from "../../src/toolkit/tls/server-tls.js";
import { makeCertSet } from "../support/certs.js";
import { ENGINES, startTestServer, type TestServer, UNICODE_MESSAGE, rejection } from "./support.js";
import { Cleanup } from "../support/cli-process.js";

function usersOver(scope: Cleanup, options: Omit<Http2TransportOptions, "services">) {
  const transport: Transport = createHttp2Transport({ ...options, services: [UserServiceDefinition] });
  scope.after(() => transport.close());
  return createClient(UserServiceDefinition, transport);
}

/** A server interceptor that fails the first `count` GetUser calls for `userId` with `code` (and the given trailers). */
function failFirst(userId: string, count: number, code: Code): { interceptor: ServerInterceptor; attempts: string[] } {
  const attempts: string[] = [];
  let failed = 0;
  const interceptor: ServerInterceptor = (call, next) => {
    if ((call.request as { userId?: string }).userId !== userId) return next();
    attempts.push(String(call.context.metadata["grpc-previous-rpc-attempts"] ?? "0"));
    if (failed++ < count) return Promise.reject(new RpcError(code, `failing on purpose (${failed})`));
    return next();
  };
  return { interceptor, attempts };
}

/** A node:http2 server that answers every stream with `respond`. */
/** A raw server that answers UNAVAILABLE with a pushback of 150 ms, then with one that says stop; `times` are when calls arrived. */
async function pushbackServer(scope: Cleanup): Promise<{ address: string; times: number[] }> {
  const times: number[] = [];
  const address = await rawServer(scope, (stream) => {
    times.push(Date.now());
    const pushback = times.length === 1 ? "150" : "-1";
    stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "14", "grpc-retry-pushback-ms": pushback }, { endStream: true });
  });
  return { address, times };
}

async function rawServer(scope: Cleanup, respond: (stream: http2.ServerHttp2Stream) => void): Promise<string> {
  const server = http2.createServer();
  server.on("stream", (stream) => {
    stream.on("error", () => undefined);
    stream.resume();
    respond(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  scope.after(() => new Promise((resolve) => server.close(resolve)));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => sessions.add(session));
  scope.after(() => sessions.forEach((session) => session.destroy()));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

// Through the call tunnel, the same behaviour: on our engine the calls travel in the tunnel, and grpc-js's
// server, which has none, gets them on streams of their own.
for (const [engine, tunnel] of ENGINES.flatMap((engine) => [[engine, false], [engine, true]] as const)) {
  describe(`the http2 client against the ${engine} engine${tunnel ? ", tunnel on" : ""}`, () => {
    const scope = new Cleanup();
    after(() => scope.run());
    let server: TestServer;
    const start = async (interceptors: ServerInterceptor[] = []): Promise<TestServer> => {
      const started = await startTestServer(engine, { interceptors });
      scope.after(() => started.close());
      return started;
    };

    it("answers unary calls, many at once over one connection", async () => {
      server = await start();
      const users = usersOver(scope, { tunnel, target: server.address });
      assert.deepEqual(await users.getUser({ userId: "u1" }), { userId: "u1", name: "Ada", email: "ada@example.com" });
      const many = await Promise.all(Array.from({ length: 300 }, (_, i) => users.getUser({ userId: `user-${i}` })));
      many.forEach((user, i) => assert.equal(user.userId, `user-${i}`));
    });

    it("gives the caller the server's status, message and google.rpc.Status details", async () => {
      const users = usersOver(scope, { tunnel, target: server.address });
      const missing = await rejection(users.getUser({ userId: "missing" }));
      assert.equal(missing.code, Code.NOT_FOUND);
      assert.equal(missing.message, 'no user with id "missing"');
      assert.equal(missing.reason, "USER_NOT_FOUND");
      assert.deepEqual(missing.metadata, { userId: "missing" });
      assert.equal(missing.method, "/service.UserService/GetUser");
      const invalid = await rejection(users.getUser({ userId: "invalid" }));
      assert.equal(invalid.code, Code.INVALID_ARGUMENT);
      assert.deepEqual(invalid.fieldViolations, [{ field: "user_id", description: 'must not be "invalid"' }]);
      const unicode = await rejection(users.getUser({ userId: "unicode" }));
      assert.equal(unicode.code, Code.FAILED_PRECONDITION);
      assert.equal(unicode.message, UNICODE_MESSAGE, "a percent-encoded grpc-message comes back as it was");
    });

    it("sends text and binary metadata, and refuses metadata it may not send", async () => {
      const users = usersOver(scope, { tunnel, target: server.address });
      const seen = await users.getUser({ userId: "metadata" }, { metadata: { "x-team": "orders", "x-blob-bin": new Uint8Array([0, 255, 7]) } });
      const received = JSON.parse(seen.name) as Record<string, string>;
      assert.equal(received["x-team"], "orders");
      assert.equal(received["x-blob-bin"], "hex:00ff07");
      const unsendable: Metadata[] = [{ "X-Upper": "a" }, { "grpc-timeout": "1S" }, { "x-text-bin": "not bytes" }, { "x-line": "two\nlines" }];
      for (const metadata of unsendable) {
        const refused = await rejection(users.getUser({ userId: "u1" }, { metadata }));
        assert.equal(refused.code, Code.INTERNAL);
        assert.match(refused.message, /metadata/);
      }
    });

    it("sends the deadline as grpc-timeout, and at the deadline resets the stream so the handler stops", async () => {
      const users = usersOver(scope, { tunnel, target: server.address });
      const left = Number((await users.getUser({ userId: "deadline" }, { timeoutMs: 3_000 })).email);
      assert.ok(left > 2_500 && left <= 3_000, `the handler had ${left} ms of a 3000 ms budget`);
      const since = server.events.length;
      const began = Date.now();
      const late = await rejection(users.getUser({ userId: "slow-deadline" }, { timeoutMs: 200 }));
      const took = Date.now() - began;
      assert.equal(late.code, Code.DEADLINE_EXCEEDED);
      assert.ok(took >= 195 && took < 600, `failed after ${took} ms`);
      const aborted = await server.nextEvent("slow-deadline", "aborted", since);
      assert.ok(aborted.kind === "aborted" && [Code.DEADLINE_EXCEEDED, Code.CANCELLED].includes(aborted.code));
    });

    it("cancels the call on the server when the caller aborts", async () => {
      const users = usersOver(scope, { tunnel, target: server.address });
      const since = server.events.length;
      const controller = new AbortController();
      const call = users.getUser({ userId: "slow-cancel" }, { signal: controller.signal });
      await server.nextEvent("slow-cancel", "started", since);
      controller.abort();
      assert.equal((await rejection(call)).code, Code.CANCELLED);
      const aborted = await server.nextEvent("slow-cancel", "aborted", since);
      assert.ok(aborted.kind === "aborted" && aborted.code === Code.CANCELLED);
    });

    it("cancels the calls in flight when the transport closes", async () => {
      const transport = createHttp2Transport({ tunnel, target: server.address, services: [UserServiceDefinition] });
      const users = createClient(UserServiceDefinition, transport);
      assert.equal((await users.getUser({ userId: "u1" })).name, "Ada");
      const since = server.events.length;
      const call = users.getUser({ userId: "slow-close" }, { timeoutMs: 10_000 });
      await server.nextEvent("slow-close", "started", since);
      transport.close();
      const closed = await rejection(call);
      assert.equal(closed.code, Code.CANCELLED);
      assert.match(closed.message, /channel was closed/);
      await server.nextEvent("slow-close", "aborted", since);
    });

    it("refuses a response larger than its limit with RESOURCE_EXHAUSTED, and goes on serving", async () => {
      const users = usersOver(scope, { tunnel, target: server.address, maxReceiveMessageBytes: 1_000 });
      const big = await rejection(users.getUser({ userId: "big:5000" }));
      assert.equal(big.code, Code.RESOURCE_EXHAUSTED);
      assert.equal((await users.getUser({ userId: "big:100" })).name.length, 100);
    });

    it("retries an idempotent call that failed UNAVAILABLE, telling the server the attempt number", async () => {
      const { interceptor, attempts } = failFirst("flaky", 2, Code.UNAVAILABLE);
      const flaky = await start([interceptor]);
      const users = usersOver(scope, { tunnel, target: flaky.address, retry: { initialBackoffMs: 5 } });
      assert.equal((await users.getUser({ userId: "flaky" })).userId, "flaky");
      assert.deepEqual(attempts, ["0", "1", "2"]);
    });

    it("does not retry other statuses, nor when retries are off", async () => {
      const notFound = failFirst("gone", 1, Code.NOT_FOUND);
      const unavailable = failFirst("down", 1, Code.UNAVAILABLE);
      const flaky = await start([notFound.interceptor, unavailable.interceptor]);
      assert.equal((await rejection(usersOver(scope, { tunnel, target: flaky.address }).getUser({ userId: "gone" }))).code, Code.NOT_FOUND);
      assert.deepEqual(notFound.attempts, ["0"]);
      const noRetries = usersOver(scope, { tunnel, target: flaky.address, retry: false });
      assert.equal((await rejection(noRetries.getUser({ userId: "down" }))).code, Code.UNAVAILABLE);
      assert.deepEqual(unavailable.attempts, ["0"]);
    });

    it("spreads calls round-robin over the endpoints of a static list, and keeps serving when one goes away", async () => {
      const counts = [0, 0];
      const counter =
        (index: number): ServerInterceptor =>
        (call, next) => {
          counts[index] = (counts[index] ?? 0) + 1;
          return next();
        };
      const a = await start([counter(0)]);
      const b = await startTestServer(engine, { interceptors: [counter(1)] });
      const users = usersOver(scope, { tunnel, target: `static:///${a.address},${b.address}`, retry: { initialBackoffMs: 5 } });
      await users.getUser({ userId: "u1" });
      // Both connections are up once each endpoint has answered.
      for (let i = 0; i < 10 && counts[1] === 0; i++) await users.getUser({ userId: "u1" });
      counts.fill(0);
      await Promise.all(Array.from({ length: 100 }, () => users.getUser({ userId: "u1" })));
      assert.ok(Math.abs((counts[0] ?? 0) - (counts[1] ?? 0)) <= 2, `calls spread evenly: ${counts.join(" / ")}`);
      await b.close(); // drains: GOAWAY, then the port is gone
      const after = await Promise.allSettled(Array.from({ length: 50 }, () => users.getUser({ userId: "u1" })));
      assert.deepEqual(after.filter((outcome) => outcome.status === "rejected"), [], "every call succeeds on the endpoint left");
    });

    it("ejects an endpoint whose calls fail as an endpoint (UNAVAILABLE)", async () => {
      const broken: ServerInterceptor = () => Promise.reject(new RpcError(Code.UNAVAILABLE, "broken on purpose"));
      const healthy = await start();
      const sick = await start([broken]);
      const users = usersOver(scope, {
        tunnel,
        target: `static:///${healthy.address},${sick.address}`,
        retry: false,
        outlierDetection: { intervalMs: 100, baseEjectionTimeMs: 5_000, requestVolume: 5 },
      });
      const outcomes: boolean[] = [];
      const began = Date.now();
      while (Date.now() - began < 800) {
        const results = await Promise.allSettled(Array.from({ length: 10 }, () => users.getUser({ userId: "u1" })));
        outcomes.push(...results.map((result) => result.status === "fulfilled"));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const last = outcomes.slice(-40);
      assert.ok(outcomes.includes(false), "the sick endpoint was called before it was ejected");
      assert.deepEqual(last.filter((ok) => !ok), [], "once ejected, it gets no calls");
    });

    it("fails at once with UNAVAILABLE when no endpoint can be reached", async () => {
      const closed = await start();
      const address = closed.address;
      await closed.close();
      const users = usersOver(scope, { tunnel, target: address });
      const began = Date.now();
      const refused = await rejection(users.getUser({ userId: "u1" }, { timeoutMs: 5_000 }));
      assert.equal(refused.code, Code.UNAVAILABLE);
      assert.match(refused.message, /ECONNREFUSED|reachable/);
      assert.ok(Date.now() - began < 2_000, "not held until the deadline");
    });

    it("drops a connection whose peer stops answering, by keepalive, and fails its calls with UNAVAILABLE before their deadline", async () => {
      const behind = await start();
      // A TCP relay that can go silent: the connection stays open, nothing gets through (a host cut off the network).
      let silent = false;
      const sockets = new Set<net.Socket>();
      const relay = net.createServer((inbound) => {
        const outbound = net.connect(behind.port, "127.0.0.1");
        for (const socket of [inbound, outbound]) {
          sockets.add(socket);
          socket.on("error", () => undefined);
        }
        inbound.on("data", (chunk) => void (silent || outbound.write(chunk)));
        outbound.on("data", (chunk) => void (silent || inbound.write(chunk)));
      });
      await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
      scope.after(() => {
        for (const socket of sockets) socket.destroy();
        return new Promise((resolve) => relay.close(resolve));
      });
      const users = usersOver(scope, {
        tunnel,
        target: `127.0.0.1:${(relay.address() as AddressInfo).port}`,
        retry: false,
        keepaliveTimeMs: 100,
        keepaliveTimeoutMs: 200,
      });
      assert.equal((await users.getUser({ userId: "u1" })).name, "Ada");
      const call = users.getUser({ userId: "slow-keepalive" }, { timeoutMs: 10_000 });
      await behind.nextEvent("slow-keepalive", "started");
      silent = true;
      const began = Date.now();
      const lost = await rejection(call);
      assert.equal(lost.code, Code.UNAVAILABLE);
      assert.match(lost.message, /keepalive/);
      assert.ok(Date.now() - began < 1_500, `noticed after ${Date.now() - began} ms, not at the 10 s deadline`);
    });

    it("speaks TLS with the files of loadClientTls, checking the server's name (given, or the target's)", async () => {
      const certs = await makeCertSet(scope);
      const tls = await loadServerTls({ certFile: certs.server, keyFile: certs.serverKey, clientCaFile: certs.ca });
      scope.after(() => tls.close());
      const secure = await startTestServer(engine, { tls });
      scope.after(() => secure.close());
      const clientTls = await loadClientTls({ caFile: certs.ca, certFile: certs.client, keyFile: certs.clientKey, serverName: "localhost" });
      scope.after(() => clientTls.close());
      const users = usersOver(scope, { tunnel, target: secure.address, tls: clientTls.connectionTls });
      assert.equal((await users.getUser({ userId: "u1" })).name, "Ada");
      // Without a server name, the certificate is checked against the target's name, not the address it resolved to.
      const byName = await loadClientTls({ caFile: certs.ca, certFile: certs.client, keyFile: certs.clientKey });
      scope.after(() => byName.close());
      const named = usersOver(scope, { tunnel, target: `dns:///localhost:${secure.port}`, tls: byName.connectionTls });
      assert.equal((await named.getUser({ userId: "u1" })).name, "Ada");
      const wrongName = await loadClientTls({ caFile: certs.ca, serverName: "elsewhere.example" });
      scope.after(() => wrongName.close());
      const refused = await rejection(usersOver(scope, { tunnel, target: secure.address, tls: wrongName.connectionTls }).getUser({ userId: "u1" }));
      assert.equal(refused.code, Code.UNAVAILABLE);
      assert.match(refused.message, /elsewhere\.example|altnames|certificate/i);
    });
  });
}

describe("the http2 client against servers that do not speak gRPC properly", () => {
  const scope = new Cleanup();
  after(() => scope.run());
  const call = async (respond: (stream: http2.ServerHttp2Stream) => void): Promise<ClientError> => {
    const address = await rawServer(scope, respond);
    return rejection(usersOver(scope, { target: address, retry: false }).getUser({ userId: "u1" }, { timeoutMs: 2_000 }));
  };

  it("maps HTTP statuses as the gRPC spec does", async () => {
    for (const [status, code] of [
      [404, Code.UNIMPLEMENTED],
      [503, Code.UNAVAILABLE],
      [401, Code.UNAUTHENTICATED],
      [500, Code.UNKNOWN],
    ] as const) {
      const error = await call((stream) => stream.respond({ ":status": status, "content-type": "text/plain" }, { endStream: true }));
      assert.equal(error.code, code, `HTTP ${status}`);
      assert.match(error.message, new RegExp(`HTTP ${status}`));
    }
  });

  it("refuses a response that is not application/grpc", async () => {
    const error = await call((stream) => {
      stream.respond({ ":status": 200, "content-type": "text/html" });
      stream.end("<html></html>");
    });
    assert.equal(error.code, Code.UNKNOWN);
    assert.match(error.message, /text\/html/);
  });

  it("fails with INTERNAL on OK without a message, on two messages, and on a body cut inside a message", async () => {
    const frame = (bytes: number[]): Buffer => Buffer.from([0, 0, 0, 0, bytes.length, ...bytes]);
    const answers: ((stream: http2.ServerHttp2Stream) => void)[] = [
      (stream) => stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "0" }, { endStream: true }),
      (stream) => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(Buffer.concat([frame([10, 1, 97]), frame([10, 1, 98])]));
      },
      (stream) => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(frame([10, 1, 97]).subarray(0, 4));
      },
    ];
    for (const answer of answers) assert.equal((await call(answer)).code, Code.INTERNAL);
  });

  it("reads a response split across DATA frames, and a gzip-compressed one", async () => {
    const { gzipSync } = await import("node:zlib");
    const message = Buffer.from(UserResponse.encode({ userId: "u1", name: "Ada", email: "" }).finish());
    const plain = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
    const zipped = gzipSync(message);
    const compressed = Buffer.concat([Buffer.from([1, 0, 0, 0, zipped.length]), zipped]);
    for (const [encoding, body] of [
      ["identity", plain],
      ["gzip", compressed],
    ] as const) {
      const address = await rawServer(scope, (stream) => {
        stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-encoding": encoding }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        for (let i = 0; i < body.length; i += 3) stream.write(body.subarray(i, i + 3));
        stream.end();
      });
      const user = await usersOver(scope, { target: address }).getUser({ userId: "u1" });
      assert.deepEqual(user, { userId: "u1", name: "Ada", email: "" }, encoding);
    }
  });

  it("maps a reset stream to its status, and retries a refused one transparently", async () => {
    const cancelled = await call((stream) => stream.close(http2.constants.NGHTTP2_CANCEL));
    assert.equal(cancelled.code, Code.CANCELLED);
    const calm = await call((stream) => stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM));
    assert.equal(calm.code, Code.RESOURCE_EXHAUSTED);
    let streams = 0;
    const address = await rawServer(scope, (stream) => {
      if (streams++ === 0) return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "5", "grpc-message": "second try" }, { endStream: true });
    });
    const second = await rejection(usersOver(scope, { target: address, retry: false }).getUser({ userId: "u1" }));
    assert.equal(second.code, Code.NOT_FOUND);
    assert.equal(second.message, "second try");
    assert.equal(streams, 2);
  });

  it("honours grpc-retry-pushback-ms: waits as long as asked, or not at all when told not to retry", async () => {
    const { address, times } = await pushbackServer(scope);
    const error = await rejection(usersOver(scope, { target: address, retry: { maxAttempts: 5 } }).getUser({ userId: "u1" }));
    assert.equal(error.code, Code.UNAVAILABLE);
    assert.equal(times.length, 2, "the second pushback (negative) stopped the retries");
    assert.ok((times[1] ?? 0) - (times[0] ?? 0) >= 145, `waited ${(times[1] ?? 0) - (times[0] ?? 0)} ms`);
  });

  it("hedges after the server's pushback, and a pushback that says stop fails the call at once when nothing else is in flight", async () => {
    const { address, times } = await pushbackServer(scope);
    const users = usersOver(scope, { target: address, hedging: { methods: ["GetUser"], delayMs: 10_000, maxAttempts: 5 } });
    const started = Date.now();
    const error = await rejection(users.getUser({ userId: "u1" }, { timeoutMs: 5_000 }));
    assert.equal(error.code, Code.UNAVAILABLE);
    assert.equal(times.length, 2, "the second pushback (negative) stopped the hedges");
    assert.ok((times[1] ?? 0) - (times[0] ?? 0) >= 145, `the hedge waited out the pushback (${(times[1] ?? 0) - (times[0] ?? 0)} ms)`);
    assert.ok(Date.now() - started < 2_000, `failed at once after the stop, not at the next hedging delay (${Date.now() - started} ms)`);
  });
});

/** python_server.py, started on a free port; its JSON event lines are collected. */
async function startPythonServer(scope: Cleanup): Promise<{ address: string; events: Record<string, string>[] }> {
  const child = spawn("/usr/bin/python3", ["test/interop/python_server.py"], { stdio: ["ignore", "pipe", "pipe"] });
  scope.after(() => child.kill("SIGTERM"));
  const events: Record<string, string>[] = [];
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const listening = /^listening (\d+)$/.exec(line);
        if (listening) resolve(Number(listening[1]));
        else if (line.startsWith("{")) events.push(JSON.parse(line) as Record<string, string>);
      }
    });
    child.once("exit", (code) => reject(new Error(`python_server.py exited (${code}) before listening: ${stderr.slice(0, 2000)}`)));
  });
  return { address: `127.0.0.1:${port}`, events };
}

describe("the http2 client against Python grpcio's server (C core)", () => {
  const scope = new Cleanup();
  after(() => scope.run());

  it("answers, and reads statuses, metadata, deadlines, compression and limits as the C core sends them", async () => {
    const python = await startPythonServer(scope);
    const users = usersOver(scope, { target: python.address, retry: { initialBackoffMs: 5 }, maxReceiveMessageBytes: 10_000 });
    assert.deepEqual(await users.getUser({ userId: "u1" }), { userId: "u1", name: "Ada", email: "ada@example.com" });
    const many = await Promise.all(Array.from({ length: 100 }, (_, i) => users.getUser({ userId: `user-${i}` })));
    many.forEach((user, i) => assert.equal(user.userId, `user-${i}`));

    const missing = await rejection(users.getUser({ userId: "missing" }));
    assert.deepEqual([missing.code, missing.message], [Code.NOT_FOUND, 'no user with id "missing"']);
    const unicode = await rejection(users.getUser({ userId: "unicode" }));
    assert.deepEqual([unicode.code, unicode.message], [Code.FAILED_PRECONDITION, UNICODE_MESSAGE]);

    const seen = JSON.parse((await users.getUser({ userId: "metadata" }, { metadata: { "x-team": "orders", "x-blob-bin": new Uint8Array([0, 255, 7]) } })).name) as Record<string, string>;
    assert.equal(seen["x-team"], "orders");
    assert.equal(seen["x-blob-bin"], "00ff07");
    const left = Number((await users.getUser({ userId: "deadline" }, { timeoutMs: 3_000 })).email);
    assert.ok(left > 2_500 && left <= 3_000, `the server had ${left} ms of a 3000 ms budget`);
    assert.equal((await users.getUser({ userId: "gzip" })).name, "Ada", "a gzip-compressed response is read");
    assert.equal((await rejection(users.getUser({ userId: "big:20000" }))).code, Code.RESOURCE_EXHAUSTED);

    assert.equal((await users.getUser({ userId: "flaky" })).userId, "flaky");
    assert.deepEqual(
      python.events.filter((e) => e["event"] === "flaky").map((e) => e["previous"]),
      ["0", "1"],
      "retried once after UNAVAILABLE, saying so in grpc-previous-rpc-attempts",
    );
  });

  it("cancels on the server at the deadline", async () => {
    const python = await startPythonServer(scope);
    const users = usersOver(scope, { target: python.address });
    const began = Date.now();
    assert.equal((await rejection(users.getUser({ userId: "slow" }, { timeoutMs: 300 }))).code, Code.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - began < 1_000);
    for (let i = 0; i < 50 && !python.events.some((e) => e["event"] === "cancelled"); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(python.events.some((e) => e["event"] === "cancelled"), `the handler saw the call end: ${JSON.stringify(python.events)}`);
  });
});
