// Hostile request bodies: at least 10,000 random and mutated messages
// (truncated fields, wrong wire types, invalid UTF-8, huge lengths, random
// bytes...) sent byte for byte to every method over one connection, 50 at a
// time. Merely invalid input must answer a definite status (INVALID_ARGUMENT,
// or what a valid request could get), never INTERNAL or UNKNOWN, and the
// server must keep serving.
//
// Invalid UTF-8 in a string field: the generated decoders (ts-proto on
// @bufbuild/protobuf's BinaryReader, non-strict) replace bad sequences with
// U+FFFD instead of throwing, as protobuf-es does by default. Such a request
// is then judged on its (replaced) content like any other; nothing throws, so
// nothing can turn into INTERNAL.
//
// SWITCHYARD_FUZZ_SEED=<n> replays one run; the seed is printed on failure.
// SWITCHYARD_TEST_ENGINE=http2 fuzzes the node:http2 engine instead of grpc-js.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { startSwitchyard, type Switchyard } from "../../src/app/switchyard.js";
import {
  CreateUserRequest,
  ListOrdersByUserRequest,
  OrderRequest,
  UserRequest,
  UserResponse,
} from "../../src/gen/service/v1/service.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";

const HOST = "127.0.0.1";
const TOTAL = 10_000;
const CONCURRENCY = 50;
/** Statuses a request may get for being merely invalid, or valid. */
const ACCEPTABLE = new Set(["OK", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION"]);

// ---- a small seeded PRNG, so that a failing run can be replayed ----

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Random {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
}

// ---- protobuf wire building blocks ----

function varint(value: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

const tag = (field: number, wireType: number): Buffer => varint((BigInt(field) << 3n) | BigInt(wireType));
const lengthDelimited = (field: number, bytes: Buffer): Buffer => Buffer.concat([tag(field, 2), varint(BigInt(bytes.length)), bytes]);

/** Byte sequences that are not UTF-8: stray continuation bytes, overlong forms, surrogates, cut-off sequences, 0xff. */
const INVALID_UTF8: readonly Buffer[] = [
  Buffer.from([0xff]),
  Buffer.from([0xfe, 0xff]),
  Buffer.from([0x80]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xe0, 0x80, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xf0, 0x9f, 0x98]),
  Buffer.from("user-\u0000-nul", "utf8"),
];

/** One method to fuzz: its path and valid requests to mutate. */
interface Target {
  readonly path: string;
  readonly fields: number;
  valid(random: Random): Buffer;
}

function targets(userIds: readonly string[]): Target[] {
  const someUser = (random: Random): string => (random.chance(0.7) ? random.pick(userIds) : `user-${random.int(1e9)}`);
  return [
    { path: "/service.UserService/GetUser", fields: 1, valid: (r) => Buffer.from(UserRequest.encode({ userId: someUser(r) }).finish()) },
    {
      path: "/service.UserService/CreateUser",
      fields: 3,
      valid: (r) =>
        Buffer.from(CreateUserRequest.encode({ userId: `fuzz-${r.int(1e9)}`, name: "Fuzz Tester", email: `f${r.int(1e6)}@example.com` }).finish()),
    },
    {
      path: "/service.OrderService/CreateOrder",
      fields: 2,
      valid: (r) => Buffer.from(OrderRequest.encode({ orderId: `order-${r.int(1e9)}`, userId: someUser(r) }).finish()),
    },
    { path: "/service.OrderService/GetOrderByUser", fields: 1, valid: (r) => Buffer.from(UserRequest.encode({ userId: someUser(r) }).finish()) },
    {
      path: "/service.OrderService/ListOrdersByUser",
      fields: 2,
      valid: (r) => Buffer.from(ListOrdersByUserRequest.encode({ userId: someUser(r), limit: r.int(600) }).finish()),
    },
  ];
}

/** The mutations, each a way a body can be wrong. */
const MUTATIONS: ReadonlyArray<{ readonly name: string; make(random: Random, target: Target): Buffer }> = [
  { name: "random bytes", make: (r) => r.bytes(r.chance(0.9) ? r.int(64) : r.int(4096)) },
  { name: "empty", make: () => Buffer.alloc(0) },
  {
    name: "truncated",
    make: (r, t) => {
      const valid = t.valid(r);
      return valid.subarray(0, r.int(Math.max(1, valid.length)));
    },
  },
  {
    name: "bytes flipped",
    make: (r, t) => {
      const body = Buffer.from(t.valid(r));
      for (let i = 1 + r.int(4); i > 0 && body.length > 0; i--) body[r.int(body.length)] = r.int(256);
      return body;
    },
  },
  {
    name: "bytes inserted",
    make: (r, t) => {
      const valid = t.valid(r);
      const at = r.int(valid.length + 1);
      return Buffer.concat([valid.subarray(0, at), r.bytes(1 + r.int(8)), valid.subarray(at)]);
    },
  },
  {
    name: "wrong wire type",
    make: (r, t) => {
      const field = 1 + r.int(t.fields);
      const wireType = r.pick([0, 1, 3, 4, 5, 6, 7]);
      const payload =
        wireType === 0 ? varint(BigInt(r.int(1e9))) : wireType === 1 ? r.bytes(r.int(9)) : wireType === 5 ? r.bytes(r.int(5)) : r.bytes(r.int(3));
      return Buffer.concat([r.chance(0.5) ? t.valid(r) : Buffer.alloc(0), tag(field, wireType), payload]);
    },
  },
  {
    name: "invalid UTF-8",
    make: (r, t) => {
      const bad = Buffer.concat([Buffer.from("user-"), r.pick(INVALID_UTF8), r.chance(0.5) ? r.pick(INVALID_UTF8) : Buffer.alloc(0)]);
      return Buffer.concat([t.valid(r), lengthDelimited(1 + r.int(t.fields === 3 ? 3 : Math.min(t.fields, 2)), bad)]);
    },
  },
  {
    name: "huge length",
    make: (r, t) => {
      const length = r.pick([2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]);
      return Buffer.concat([r.chance(0.5) ? t.valid(r) : Buffer.alloc(0), tag(1 + r.int(t.fields), 2), varint(length), r.bytes(r.int(16))]);
    },
  },
  {
    name: "overlong varint",
    // Eleven continuation bytes: longer than any varint may be.
    make: (r, t) => Buffer.concat([tag(1 + r.int(t.fields), r.pick([0, 2])), Buffer.alloc(11 + r.int(8), 0xff), Buffer.from([0x01])]),
  },
  {
    name: "bad field numbers",
    make: (r) => Buffer.concat([r.pick([Buffer.from([0x00]), Buffer.from([0x02, 0x01]), tag(536_870_911, 0), tag(19_000, 2), varint(0n)]), r.bytes(r.int(8))]),
  },
  {
    name: "unmatched and nested groups",
    make: (r, t) => {
      const depth = r.pick([1, 2, 100, 10_000]);
      const field = 1 + r.int(t.fields + 2);
      const opens = Buffer.concat(Array.from({ length: depth }, () => tag(field, 3)));
      const closes = r.chance(0.5) ? Buffer.concat(Array.from({ length: depth }, () => tag(field, 4))) : Buffer.alloc(0);
      return Buffer.concat([opens, closes]);
    },
  },
  {
    name: "repeated and long fields",
    make: (r, t) => {
      const field = 1 + r.int(t.fields);
      if (r.chance(0.5)) return Buffer.concat(Array.from({ length: 1 + r.int(2_000) }, () => lengthDelimited(field, Buffer.from(`u${r.int(100)}`))));
      return lengthDelimited(field, Buffer.alloc(r.pick([255, 256, 1_000, 100_000]), 0x61));
    },
  },
  {
    name: "out-of-range numbers",
    make: (r) =>
      Buffer.concat([
        lengthDelimited(1, Buffer.from(`user-${r.int(1000)}`)),
        tag(2, 0),
        varint(r.pick([-1n, -(2n ** 31n), 2n ** 31n, 2n ** 32n + 5n, 2n ** 63n, 2n ** 64n - 1n])),
      ]),
  },
];

// ---------------------------------------------------------------------------

type Outcome = { readonly code: string; readonly details: string };

function rawCall(channel: grpc.Client, path: string, body: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    channel.makeUnaryRequest<Buffer, Buffer>(
      path,
      (bytes) => bytes,
      (bytes) => bytes,
      body,
      new grpc.Metadata(),
      { deadline: Date.now() + 30_000 },
      (error) => resolve(error ? { code: grpc.status[error.code] ?? String(error.code), details: error.details } : { code: "OK", details: "" }),
    );
  });
}

const ENGINE = process.env.SWITCHYARD_TEST_ENGINE === "http2" ? "http2" : "grpc-js";

describe(`fuzzing every method with hostile request bodies (${ENGINE} engine)`, () => {
  const seed = Number(process.env.SWITCHYARD_FUZZ_SEED ?? Date.now() % 2 ** 31);
  let dataDir: string;
  let server: Switchyard;
  let channel: grpc.Client;
  const userIds: string[] = [];
  let unexpectedLogs = 0;

  before(async () => {
    // On tmpfs when there is one: the test is about the wire, not about fsync
    // (SQLite syncs every write, and some fuzzed requests are valid writes).
    const shm = await fs.stat("/dev/shm").then((stat) => stat.isDirectory(), () => false);
    dataDir = await fs.mkdtemp(path.join(shm ? "/dev/shm" : os.tmpdir(), "switchyard-fuzz-"));
    // Counts calls the dispatcher would log as failing unexpectedly.
    const watch: ServerInterceptor = async (_call, next) => {
      try {
        return await next();
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (typeof code !== "number" || code === 2 || code === 13) unexpectedLogs++;
        throw error;
      }
    };
    server = await startSwitchyard({
      services: ["user", "order"],
      host: HOST,
      port: 0,
      dataDir,
      engine: ENGINE,
      drainTimeoutMs: 1_000,
      logger: silentLogger(),
      interceptors: [watch],
    });
    // One channel: one HTTP/2 connection for every call.
    channel = new grpc.Client(`${HOST}:${server.port}`, grpc.credentials.createInsecure());
    for (let i = 0; i < 5; i++) {
      const userId = `user-${randomUUID()}`;
      const created = await rawCall(channel, "/service.UserService/CreateUser", Buffer.from(CreateUserRequest.encode({ userId, name: "Ada", email: "ada@example.com" }).finish()));
      assert.equal(created.code, "OK", created.details);
      userIds.push(userId);
    }
  });
  after(async () => {
    channel?.close();
    await server?.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  before(() => {
    // grpc-js formats a stack for every failed call, and through tsx's source
    // maps that costs more than the call itself; this test reads no stacks.
    process.setSourceMapsEnabled(false);
  });
  after(() => process.setSourceMapsEnabled(true));

  it(`${TOTAL} bodies, ${CONCURRENCY} at a time on one connection: no INTERNAL, no UNKNOWN, still serving (seed ${seed})`, { timeout: 180_000 }, async (t) => {
    const random = new Random(seed);
    const methods = targets(userIds);
    const jobs = Array.from({ length: TOTAL }, (_, i) => {
      const target = methods[i % methods.length] as Target;
      const mutation = MUTATIONS[random.int(MUTATIONS.length)] as (typeof MUTATIONS)[number];
      return { target, mutation: mutation.name, body: mutation.make(random, target) };
    });
    const tally = new Map<string, number>();
    const failures: string[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < jobs.length) {
          const job = jobs[next++];
          if (job === undefined) break;
          const outcome = await rawCall(channel, job.target.path, job.body);
          tally.set(outcome.code, (tally.get(outcome.code) ?? 0) + 1);
          if (!ACCEPTABLE.has(outcome.code) && failures.length < 20) {
            const hex = job.body.subarray(0, 64).toString("hex");
            failures.push(`${job.target.path} ${job.mutation} → ${outcome.code} "${outcome.details}" body(${job.body.length}) ${hex}`);
          }
          // A stack trace or SQL in a status message is a leak.
          if (/\n\s+at |SQLITE|INSERT INTO|SELECT /i.test(outcome.details) && failures.length < 20) {
            failures.push(`${job.target.path} ${job.mutation}: status message leaks internals: ${outcome.details}`);
          }
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const summary = `seed ${seed}, ${TOTAL} calls in ${seconds.toFixed(1)} s: ${JSON.stringify(Object.fromEntries(tally))}`;
    t.diagnostic(summary);
    assert.deepEqual(failures, [], summary);
    assert.equal(unexpectedLogs, 0, `calls failed unexpectedly on the server (${summary})`);
    assert.equal([...tally.values()].reduce((a, b) => a + b, 0), TOTAL);
    assert.ok((tally.get("INVALID_ARGUMENT") ?? 0) > TOTAL / 4, `suspiciously few INVALID_ARGUMENT: ${summary}`);

    // Still serving, on the same connection.
    const userId = userIds[0] as string;
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      channel.makeUnaryRequest<Buffer, Buffer>(
        "/service.UserService/GetUser",
        (b) => b,
        (b) => b,
        Buffer.from(UserRequest.encode({ userId }).finish()),
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (error, response) => (error ? reject(error) : resolve(response ?? Buffer.alloc(0))),
      );
    });
    assert.equal(UserResponse.decode(bytes).userId, userId);
  });
});
