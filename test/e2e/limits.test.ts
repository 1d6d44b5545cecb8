// The server's limits, against a real grpc-js server over real sockets:
// message size (before and after decompression), concurrent streams per
// connection, metadata size, the deadline cap, and an HTTP/2 rapid-reset
// burst. Each refusal leaves the server serving.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import http2 from "node:http2";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import { startSwitchyard, type SwitchyardOptions, type Switchyard } from "../../src/app/switchyard.js";
import { UserRequest, UserResponse } from "../../src/gen/service/v1/service.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { Cleanup, startServer } from "../support/cli-process.js";
import { connectH2, grpcFrame, grpcHeaders, rawCall, writeChunk } from "../support/raw-h2.js";

const HOST = "127.0.0.1";
const MiB = 1024 * 1024;
const GET_USER = "/service.UserService/GetUser";
const CREATE_USER = "/service.UserService/CreateUser";

async function start(scope: Cleanup, options: Partial<Omit<SwitchyardOptions, "logger">> = {}): Promise<Switchyard> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-limits-"));
  scope.after(() => fs.rm(dataDir, { recursive: true, force: true }));
  const server = await startSwitchyard({ services: ["user", "order"], host: HOST, port: 0, dataDir, drainTimeoutMs: 500, logger: silentLogger(), ...options });
  scope.after(() => server.close());
  return server;
}

type Outcome = { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly error: grpc.ServiceError };

function call(channel: grpc.Client, method: string, body: Buffer, metadata = new grpc.Metadata(), timeoutMs = 15_000): Promise<Outcome> {
  return new Promise((resolve) => {
    channel.makeUnaryRequest<Buffer, Buffer>(method, (b) => b, (b) => b, body, metadata, { deadline: Date.now() + timeoutMs }, (error, response) =>
      resolve(error ? { ok: false, error } : { ok: true, bytes: response ?? Buffer.alloc(0) }),
    );
  });
}

function codeOf(outcome: Outcome): string {
  return outcome.ok ? "OK" : (grpc.status[outcome.error.code] ?? String(outcome.error.code));
}

/** Creates a user and reads it back on `channel`: the proof that the server still serves. */
async function stillServes(channel: grpc.Client): Promise<void> {
  const userId = `user-${randomUUID()}`;
  const created = await call(channel, CREATE_USER, Buffer.from(encodeCreateUser(userId)));
  assert.equal(codeOf(created), "OK", created.ok ? "" : created.error.details);
  const read = await call(channel, GET_USER, Buffer.from(UserRequest.encode({ userId }).finish()));
  assert.ok(read.ok, read.ok ? "" : `GetUser failed: ${read.error.details}`);
  assert.equal(UserResponse.decode(read.bytes).userId, userId);
}

function encodeCreateUser(userId: string): Uint8Array {
  // field 1 user_id, 2 name, 3 email
  const text = (field: number, value: string): Buffer => {
    const bytes = Buffer.from(value, "utf8");
    return Buffer.concat([Buffer.from([(field << 3) | 2, bytes.length]), bytes]);
  };
  return Buffer.concat([text(1, userId), text(2, "Ada Lovelace"), text(3, "ada@example.com")]);
}

/** Samples this process's RSS while `run` runs; resolves with the highest rise above the start, in MiB. */
async function peakRssRiseMiB<T>(run: () => Promise<T>): Promise<{ result: T; riseMiB: number }> {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  try {
    const result = await run();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, riseMiB: (peak - baseline) / MiB };
  } finally {
    clearInterval(sampler);
  }
}

describe("limits of the grpc-js engine", { concurrency: false }, () => {
  const scope = new Cleanup();
  let server: Switchyard;
  let channel: grpc.Client;

  before(async () => {
    server = await start(scope);
    channel = new grpc.Client(`${HOST}:${server.port}`, grpc.credentials.createInsecure());
    scope.after(() => channel.close());
  });
  after(() => scope.run());

  it("a 5 MiB request is RESOURCE_EXHAUSTED (the limit is 4 MiB), and the server keeps serving", async () => {
    // A valid UserRequest whose user_id is 5 MiB long.
    const body = Buffer.from(UserRequest.encode({ userId: "x".repeat(5 * MiB) }).finish());
    const outcome = await call(channel, GET_USER, body);
    assert.equal(codeOf(outcome), "RESOURCE_EXHAUSTED", outcome.ok ? "" : outcome.error.details);
    await stillServes(channel);
  });

  it("a message that claims 1 GiB is refused from its 5-byte prefix: memory does not follow the claim", async () => {
    const session = await connectH2(server.port);
    scope.after(() => session.destroy());
    const chunk = Buffer.alloc(MiB, 0x61);
    let sent = 0;
    let sentWhenAnswered: number | undefined;
    const { result, riseMiB } = await peakRssRiseMiB(() =>
      rawCall(session, GET_USER, async (stream) => {
        stream.once("response", () => (sentWhenAnswered = sent));
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(1024 * MiB - 1, 1);
        if (!(await writeChunk(stream, prefix))) return;
        // Keeps sending (up to 256 MiB) until the server answers.
        while (sent < 256 * MiB && sentWhenAnswered === undefined && (await writeChunk(stream, chunk))) sent += chunk.length;
      }),
    );
    assert.equal(result.grpcStatus, Code.RESOURCE_EXHAUSTED, JSON.stringify({ ...result, body: undefined }));
    assert.ok(sentWhenAnswered !== undefined && sentWhenAnswered < 64 * MiB, `answered after ${sentWhenAnswered} bytes`);
    assert.ok(riseMiB < 96, `memory rose by ${riseMiB.toFixed(0)} MiB`);
    await stillServes(channel);
  });

  it("a gzip bomb (1 MiB expanding to 1 GiB) is RESOURCE_EXHAUSTED without a memory spike", async () => {
    // Concatenated gzip members are one gzip stream: 64 × 16 MiB of zeros.
    const member = gzipSync(Buffer.alloc(16 * MiB), { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: 64 }, () => member));
    assert.ok(bomb.length < 2 * MiB, `the bomb is ${bomb.length} bytes`);
    const session = await connectH2(server.port);
    scope.after(() => session.destroy());
    const { result, riseMiB } = await peakRssRiseMiB(() => rawCall(session, GET_USER, grpcFrame(bomb, true), { "grpc-encoding": "gzip" }));
    assert.equal(result.grpcStatus, Code.RESOURCE_EXHAUSTED, JSON.stringify({ ...result, body: undefined }));
    assert.match(result.grpcMessage ?? "", /decompresses to a size larger than 4194304/);
    assert.ok(riseMiB < 96, `memory rose by ${riseMiB.toFixed(0)} MiB while refusing a 1 GiB bomb`);
    // A small gzip request is fine: compression itself is allowed.
    const small = await rawCall(session, GET_USER, grpcFrame(gzipSync(UserRequest.encode({ userId: "nobody" }).finish()), true), {
      "grpc-encoding": "gzip",
    });
    assert.equal(small.grpcStatus, Code.NOT_FOUND);
    await stillServes(channel);
  });

  it("request metadata over 16 KiB is RESOURCE_EXHAUSTED; a few KiB (a JWT) is fine", async () => {
    const big = new grpc.Metadata();
    big.set("x-padding", "p".repeat(32 * 1024));
    const refused = await call(channel, GET_USER, Buffer.from(UserRequest.encode({ userId: "nobody" }).finish()), big);
    assert.equal(codeOf(refused), "RESOURCE_EXHAUSTED", refused.ok ? "" : refused.error.details);
    const fine = new grpc.Metadata();
    fine.set("x-padding", "p".repeat(4 * 1024));
    const answered = await call(channel, GET_USER, Buffer.from(UserRequest.encode({ userId: "nobody" }).finish()), fine);
    assert.equal(codeOf(answered), "NOT_FOUND");
    await stillServes(channel);
  });

  it("advertises at most 100 concurrent streams per connection", async () => {
    const session = await connectH2(server.port);
    scope.after(() => session.destroy());
    const settings = session.remoteSettings;
    assert.equal(settings.maxConcurrentStreams, 100);
    assert.equal(settings.maxHeaderListSize, 16 * 1024);
  });
});

describe("concurrent streams per connection", () => {
  const scope = new Cleanup();
  after(() => scope.run());

  it("with a limit of 4, the fifth call on a connection waits for a free stream, and all complete", async () => {
    let inFlight = 0;
    let highest = 0;
    let entered = 0;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const hold: ServerInterceptor = async (call, next) => {
      if (call.method !== "GetUser") return next();
      entered++;
      highest = Math.max(highest, ++inFlight);
      try {
        await released;
        return await next();
      } finally {
        inFlight--;
      }
    };
    const server = await start(scope, { maxConcurrentStreams: 4, interceptors: [hold] });
    const channel = new grpc.Client(`${HOST}:${server.port}`, grpc.credentials.createInsecure());
    scope.after(() => channel.close());
    // One connection: a first call opens it.
    assert.equal(codeOf(await call(channel, CREATE_USER, Buffer.from(encodeCreateUser(`user-${randomUUID()}`)))), "OK");
    const calls = Array.from({ length: 12 }, () => call(channel, GET_USER, Buffer.from(UserRequest.encode({ userId: "nobody" }).finish()), undefined, 30_000));
    const deadline = Date.now() + 10_000;
    while (entered < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(entered, 4, "calls beyond the limit reached the handler");
    release();
    const outcomes = await Promise.all(calls);
    assert.deepEqual(outcomes.map(codeOf), Array.from({ length: 12 }, () => "NOT_FOUND"));
    assert.equal(highest, 4);
  });
});

describe("the deadline cap", { concurrency: true }, () => {
  const scope = new Cleanup();
  const seen: Array<{ userId: string; deadline: number | undefined; started: number; abortedWith?: string }> = [];
  let server: Switchyard;
  let channel: grpc.Client;

  before(async () => {
    // Holds GetUser until its signal aborts, recording the deadline it was given.
    const holdUntilAborted: ServerInterceptor = async (call, next) => {
      if (call.method !== "GetUser") return next();
      const userId = (call.request as UserRequest).userId;
      const entry: { userId: string; deadline: number | undefined; started: number; abortedWith?: string } = {
        userId,
        deadline: call.context.deadline,
        started: Date.now(),
      };
      seen.push(entry);
      await new Promise<void>((resolve) => {
        if (call.context.signal.aborted) return resolve();
        call.context.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      const reason: unknown = call.context.signal.reason;
      entry.abortedWith = reason instanceof Error ? `${(reason as { code?: number }).code ?? ""} ${reason.message}` : String(reason);
      throw reason;
    };
    server = await start(scope, { maxDeadlineMs: 700, interceptors: [holdUntilAborted] });
    channel = new grpc.Client(`${HOST}:${server.port}`, grpc.credentials.createInsecure());
    scope.after(() => channel.close());
  });
  after(() => scope.run());

  const request = (userId: string): Buffer => Buffer.from(UserRequest.encode({ userId }).finish());

  it("a call asking for 60 s gets 0.7 s: its context has the capped deadline and the caller gets DEADLINE_EXCEEDED", async () => {
    const started = Date.now();
    const outcome = await call(channel, GET_USER, request("capped-60s"), undefined, 60_000);
    const elapsed = Date.now() - started;
    assert.equal(codeOf(outcome), "DEADLINE_EXCEEDED", outcome.ok ? "" : outcome.error.details);
    assert.ok(!outcome.ok && /longer than this server allows \(700 ms\)/.test(outcome.error.details), outcome.ok ? "" : outcome.error.details);
    assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
    const entry = seen.find((candidate) => candidate.userId === "capped-60s");
    assert.ok(entry?.deadline !== undefined && entry.deadline - entry.started <= 700, JSON.stringify(entry));
    assert.match(entry.abortedWith ?? "", new RegExp(`^${Code.DEADLINE_EXCEEDED} `), "the handler's signal did not abort with DEADLINE_EXCEEDED");
  });

  it("a call without any deadline is capped too", async () => {
    const outcome = await new Promise<Outcome>((resolve) => {
      channel.makeUnaryRequest<Buffer, Buffer>(GET_USER, (b) => b, (b) => b, request("no-deadline"), new grpc.Metadata(), {}, (error, response) =>
        resolve(error ? { ok: false, error } : { ok: true, bytes: response ?? Buffer.alloc(0) }),
      );
    });
    assert.equal(codeOf(outcome), "DEADLINE_EXCEEDED");
    const entry = seen.find((candidate) => candidate.userId === "no-deadline");
    assert.ok(entry?.deadline !== undefined && entry.deadline - entry.started <= 700, JSON.stringify(entry));
  });

  it("a call with a shorter deadline keeps its own", async () => {
    const clientDeadline = Date.now() + 300;
    const outcome = await new Promise<Outcome>((resolve) => {
      channel.makeUnaryRequest<Buffer, Buffer>(GET_USER, (b) => b, (b) => b, request("short"), new grpc.Metadata(), { deadline: clientDeadline }, (error, response) =>
        resolve(error ? { ok: false, error } : { ok: true, bytes: response ?? Buffer.alloc(0) }),
      );
    });
    assert.equal(codeOf(outcome), "DEADLINE_EXCEEDED");
    const entry = seen.find((candidate) => candidate.userId === "short");
    assert.ok(entry, "the handler did not run");
    // Its own 300 ms (as the server computed it from grpc-timeout), not the 700 ms cap.
    assert.ok(entry.deadline !== undefined && entry.deadline - entry.started <= 350, `deadline ${entry.deadline}, started ${entry.started}`);
    assert.ok(Math.abs(entry.deadline - clientDeadline) < 2_000, `deadline ${entry.deadline} vs the client's ${clientDeadline}`);
  });
});

describe("HTTP/2 rapid reset", () => {
  const scope = new Cleanup();
  after(() => scope.run());

  it("up to 5,000 streams opened and cancelled at once on one connection do not take the server down; health keeps answering", async (t) => {
    // The server in its own process (`switchyard serve`), as in production: the
    // attack and the health checks come from this one.
    const server = await startServer(scope);
    const healthChannel = new grpc.Client(`${HOST}:${server.port}`, grpc.credentials.createInsecure());
    scope.after(() => healthChannel.close());
    // The server works through the burst's backlog before it reads the check,
    // which takes seconds on a loaded machine: a generous deadline.
    const check = (): Promise<Outcome> => call(healthChannel, "/grpc.health.v1.Health/Check", Buffer.alloc(0), undefined, 20_000);
    assert.equal(codeOf(await check()), "OK");

    let attacking = true;
    const healthResults: string[] = [];
    let slowestHealthMs = 0;
    const healthLoop = (async () => {
      while (attacking) {
        const started = performance.now();
        healthResults.push(codeOf(await check()));
        slowestHealthMs = Math.max(slowestHealthMs, performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    const session = await connectH2(server.port);
    scope.after(() => session.destroy());
    let opened = 0;
    let goaway: number | undefined;
    session.on("goaway", (code) => (goaway = code));
    const body = grpcFrame(UserRequest.encode({ userId: "nobody" }).finish());
    // Bounded batches, so that the client's own stream bookkeeping stays small.
    for (let batch = 0; batch < 50 && !session.closed && !session.destroyed && goaway === undefined; batch++) {
      const ready: Array<Promise<void>> = [];
      for (let i = 0; i < 100; i++) {
        let stream: http2.ClientHttp2Stream;
        try {
          stream = session.request(grpcHeaders(GET_USER));
        } catch {
          break;
        }
        opened++;
        stream.on("error", () => undefined);
        stream.write(body);
        ready.push(
          new Promise<void>((resolve) => {
            stream.once("close", () => resolve());
            // Cancelled as soon as it has an id (its HEADERS go out first).
            const cancel = (): void => stream.close(http2.constants.NGHTTP2_CANCEL);
            if (stream.pending) stream.once("ready", cancel);
            else cancel();
          }),
        );
      }
      await Promise.all(ready);
    }
    attacking = false;
    await healthLoop;

    // node:http2 may end the abusive connection (GOAWAY) before 5,000: that is the defence working.
    t.diagnostic(
      `${opened} streams opened and cancelled; GOAWAY ${goaway ?? "none"}; ${healthResults.length} health checks during the burst, the slowest ${slowestHealthMs.toFixed(0)} ms`,
    );
    assert.ok(opened >= 500, `only ${opened} streams were opened`);
    assert.ok(healthResults.length > 0, "no health check ran during the burst");
    assert.deepEqual(
      healthResults.filter((result) => result !== "OK"),
      [],
      `health failed during the burst (${opened} streams, GOAWAY ${goaway ?? "none"})`,
    );
    const after = new grpc.Client(`${HOST}:${server.port}`, grpc.credentials.createInsecure());
    scope.after(() => after.close());
    await stillServes(after);
    assert.ok(!server.hasExited, "the server process exited");
  });
});
