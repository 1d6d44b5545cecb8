// Service discovery through a real etcd: registration under a lease, expiry
// after a crash, deregistration first on a graceful stop, round-robin over
// the replicas behind `etcd:///user-service`, and calls that keep working
// while a replica stops and while etcd is down or restarts.
import assert from "node:assert/strict";
import os from "node:os";
import path from "node:path";
import fs from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Etcd3, type IKeyValue } from "etcd3";
import { startSwitchyard } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { type Client, createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { Cleanup, type CleanupScope, pollUntil, runCli, type ServerProcess, startServer, tempDir } from "../support/cli-process.js";
import { type EtcdServer, startEtcd } from "../support/etcd.js";
import { etcdDiscovery } from "../../src/toolkit/discovery/etcd-discovery.js";

const TTL_SECONDS = 2;

describe("etcd service discovery", () => {
  const cleanup = new Cleanup();
  let etcd: EtcdServer;
  let kv: Etcd3;

  before(async () => {
    etcd = await startEtcd(cleanup);
    kv = new Etcd3({ hosts: etcd.endpoint });
    cleanup.after(() => kv.close());
  });
  after(() => cleanup.run());

  /** The registered instances of a service: key → value and lease. */
  async function instancesOf(serviceName: string): Promise<Map<string, IKeyValue>> {
    const listed = await kv.getAll().prefix(`/switchyard/${serviceName}/`).exec();
    return new Map(listed.kvs.map((entry) => [entry.key.toString(), entry]));
  }

  /** The key a server registered for a service, from its listening line. */
  async function keyOf(server: ServerProcess, serviceName: string): Promise<string> {
    const listening = await server.waitForLog((line) => Array.isArray(line["registered"]), "with the registered keys");
    const entry = (listening["registered"] as string[]).find((text) => text.startsWith(`/switchyard/${serviceName}/`));
    assert.ok(entry, `${serviceName} is not among the registered keys: ${JSON.stringify(listening["registered"])}`);
    return entry.split(" → ")[0] as string;
  }

  function serve(t: CleanupScope, services: string, extraArgs: readonly string[] = []): Promise<ServerProcess> {
    return startServer(t, {
      services,
      extraArgs: ["--registry", etcd.url, "--registry-ttl", String(TTL_SECONDS), ...extraArgs],
    });
  }

  it("registers each hosted service under the prefix with a lease, and a graceful stop removes the keys at once", async (t) => {
    const server = await serve(t, "user,order", ["--advertise-address", "127.0.0.1"]);
    const instances = [...(await instancesOf("user-service")).values(), ...(await instancesOf("order-service")).values()];
    assert.equal(instances.length, 2);
    for (const entry of instances) {
      assert.match(entry.key.toString(), /^\/switchyard\/(user|order)-service\/[^/]+$/);
      assert.equal(entry.value.toString(), server.address);
      assert.notEqual(entry.lease, "0", "the key is attached to a lease");
      const lease = await kv.leaseClient.leaseTimeToLive({ ID: entry.lease });
      assert.equal(Number(lease.grantedTTL), TTL_SECONDS);
      assert.ok(Number(lease.TTL) > 0, "the lease is alive");
    }

    const exit = await server.stop("SIGTERM");
    assert.equal(exit.code, 0, exit.stderr);
    assert.equal((await instancesOf("user-service")).size, 0, "deregistered before exiting, not by lease expiry");
    assert.equal((await instancesOf("order-service")).size, 0);
  });

  it("serve refuses etcd:/// without --registry, and exits 1 when the registry cannot be reached", async (t) => {
    const dataDir = await tempDir(t);
    const [usage, unreachable] = await Promise.all([
      runCli(["serve", "--services", "order", "--user-service", "etcd:///user-service", "--data-dir", dataDir]),
      runCli(["serve", "--services", "user", "--port", "0", "--data-dir", dataDir, "--registry", "etcd://127.0.0.1:1"]),
    ]);
    assert.notEqual(usage.code, 0);
    assert.match(usage.stderr, /--user-service etcd:\/\/\/user-service resolves through a registry: add --registry/);
    assert.equal(unreachable.code, 1, unreachable.stderr);
    assert.match(unreachable.stderr, /could not register user-service in etcd at 127\.0\.0\.1:1/);
  });

  it("kill -9: the key of a crashed process is gone within TTL + 1 s", async (t) => {
    const server = await serve(t, "user");
    const key = await keyOf(server, "user-service");
    assert.ok((await instancesOf("user-service")).has(key));

    server.signal("SIGKILL");
    const killedAt = Date.now();
    await server.waitForExit();
    await pollUntil("the crashed instance's key to expire", async () => ((await instancesOf("user-service")).has(key) ? undefined : true), {
      timeoutMs: (TTL_SECONDS + 2) * 1_000,
    });
    const goneAfterMs = Date.now() - killedAt;
    t.diagnostic(`key gone ${goneAfterMs} ms after kill -9 (TTL ${TTL_SECONDS} s)`);
    assert.ok(goneAfterMs <= (TTL_SECONDS + 1) * 1_000, `gone after ${goneAfterMs} ms`);
  });

  it("drains in order: NOT_SERVING, out of etcd, refuse new calls, finish the calls in flight, then close", async (t) => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = 0;
    const holdGetUser: ServerInterceptor = async (call, next) => {
      if (call.method === "GetUser" && (call.request as { userId?: string }).userId === "held") {
        held++;
        await gate;
      }
      return next();
    };
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-discovery-"));
    t.after(() => fs.rm(dataDir, { recursive: true, force: true }));
    const app = await startSwitchyard({
      services: ["user"],
      host: "127.0.0.1",
      port: 0,
      dataDir,
      registry: etcd.url,
      registryTtlSeconds: TTL_SECONDS,
      interceptors: [holdGetUser],
      logger: silentLogger(),
    });
    let closed = false;
    t.after(() => (closed ? undefined : app.close()));
    const [registration] = app.registrations;
    assert.ok(registration);
    assert.equal(registration.address, `127.0.0.1:${app.port}`);

    const transport = createGrpcTransport({ target: `127.0.0.1:${app.port}`, services: [UserServiceDefinition], retry: false });
    t.after(() => transport.close());
    const users = createClient(UserServiceDefinition, transport);
    await users.createUser({ userId: "held", name: "Held", email: "held@example.com" });

    // Health, as a load balancer sees it: the Watch stream's updates, timed.
    const channel = new grpc.Client(`127.0.0.1:${app.port}`, grpc.credentials.createInsecure());
    t.after(() => channel.close());
    const healthUpdates: Array<{ status: number; at: number }> = [];
    const watch = channel.makeServerStreamRequest(
      "/grpc.health.v1.Health/Watch",
      (request: Buffer) => request,
      (bytes: Buffer) => bytes,
      Buffer.alloc(0),
    );
    watch.on("data", (bytes: Buffer) => healthUpdates.push({ status: bytes[1] ?? 0, at: performance.now() }));
    watch.on("error", () => undefined);
    await pollUntil("the first health update", () => (healthUpdates.length > 0 ? true : undefined));
    assert.equal(healthUpdates[0]?.status, 1, "SERVING");

    // The key's deletion, as a resolver sees it.
    const watcher = await kv.watch().key(registration.key).create();
    t.after(() => watcher.cancel());
    const deleted = new Promise<number>((resolve) => watcher.on("delete", () => resolve(performance.now())));

    const inFlight = users.getUser({ userId: "held" }, { timeoutMs: 10_000 });
    await pollUntil("the held call to reach the handler", () => (held === 1 ? true : undefined));
    const closing = app.close().then(() => (closed = true));

    const deletedAt = await deleted;
    const notServing = healthUpdates.find((update) => update.status === 2);
    assert.ok(notServing, "health went NOT_SERVING");
    assert.ok(notServing.at <= deletedAt, "NOT_SERVING before the key is deleted");
    watch.cancel();
    assert.equal(closed, false, "still draining");

    // Out of the registry, it stops taking calls…
    const refused = await pollUntil("a new call to be refused", async () => {
      const outcome = await users.getUser({ userId: "held-not" }, { timeoutMs: 1_000 }).then(
        () => undefined,
        (error: unknown) => (error instanceof ClientError && error.code === Code.UNAVAILABLE ? error : undefined),
      );
      return outcome;
    }, { timeoutMs: 3_000 });
    assert.equal(refused.code, Code.UNAVAILABLE);
    assert.equal(closed, false, "the held call keeps close() waiting");

    // …and the call in flight still finishes before close() does.
    release();
    const response = await inFlight;
    assert.equal(response.name, "Held");
    await closing;
  });

  it("round-robins over UserService replicas behind etcd:///user-service, through a stop, a kill -9, an etcd outage and restarts", async (t) => {
    const [userA, userB, userC] = await Promise.all([serve(t, "user"), serve(t, "user"), serve(t, "user")]);
    const order = await serve(t, "order", ["--user-service", "etcd:///user-service"]);
    const keyB = await keyOf(userB, "user-service");
    const keyC = await keyOf(userC, "user-service");
    const orderKey = await keyOf(order, "order-service");

    // Each replica has its own SQLite: the same user in both.
    for (const replica of [userA, userB, userC]) {
      const transport = createGrpcTransport({ target: replica.address, services: [UserServiceDefinition] });
      await createClient(UserServiceDefinition, transport).createUser({ userId: "u-1", name: "Ada", email: "ada@example.com" });
      transport.close();
    }
    const orderTransport = createGrpcTransport({ target: order.address, services: [OrderServiceDefinition] });
    t.after(() => orderTransport.close());
    const orders = createClient(OrderServiceDefinition, orderTransport);
    const getUserCalls = (replica: ServerProcess): number =>
      replica.logs().filter((line) => line.msg === "call finished" && String(line["method"]).endsWith("UserService/GetUser")).length;

    // Phase 1: every replica gets its share of the calls.
    for (let i = 0; i < 60; i++) await orders.createOrder({ orderId: `rr-${i}`, userId: "u-1" });
    const shares = [userA, userB, userC].map(getUserCalls);
    t.diagnostic(`60 CreateOrder calls: GetUser on replicas A, B, C: ${shares.join(", ")}`);
    assert.equal(shares.reduce((sum, n) => sum + n, 0), 60);
    assert.ok(shares.every((n) => n >= 12), `the replicas share the calls (${shares.join(", ")})`);

    const load = startLoad(orders, "u-1");
    t.after(() => load.stop());
    const phase = async (what: string, run: () => Promise<void>): Promise<void> => {
      const before = { ok: load.ok, failed: load.failures.length };
      const started = performance.now();
      await run();
      const failures = load.failures.slice(before.failed);
      t.diagnostic(
        `${what}: ${load.ok - before.ok} calls ok, ${failures.length} failed in ${Math.round(performance.now() - started)} ms`,
      );
      assert.deepEqual(failures, [], `${what}: no call fails`);
      assert.ok(load.ok - before.ok > 0, `${what}: calls went through`);
    };

    // Phase 2: replica A stops gracefully under load; the others take its calls.
    await phase("replica A stops (SIGTERM)", async () => {
      await sleep(300);
      const exit = await userA.stop("SIGTERM");
      assert.equal(exit.code, 0, exit.stderr);
      const onA = getUserCalls(userA);
      const onB = getUserCalls(userB);
      await sleep(500);
      assert.ok(getUserCalls(userB) > onB, "B keeps answering");
      assert.equal(getUserCalls(userA), onA);
    });

    // Phase 3: replica C is killed under load: its key expires within TTL + 1 s;
    // its calls in flight are retried on B (GetUser is idempotent).
    await phase("replica C killed (SIGKILL)", async () => {
      await sleep(300);
      userC.signal("SIGKILL");
      const killedAt = Date.now();
      await pollUntil("C's key to expire", async () => ((await instancesOf("user-service")).has(keyC) ? undefined : true), {
        timeoutMs: (TTL_SECONDS + 2) * 1_000,
      });
      const goneAfterMs = Date.now() - killedAt;
      t.diagnostic(`C's key gone ${goneAfterMs} ms after kill -9`);
      assert.ok(goneAfterMs <= (TTL_SECONDS + 1) * 1_000);
      await sleep(300);
    });

    // Phase 4: etcd down for longer than a TTL: the known endpoint keeps serving.
    await phase("etcd down", async () => {
      await etcd.stop("SIGKILL");
      await sleep(TTL_SECONDS * 1_000 + 1_000);
    });

    // Phase 5: etcd back with its data: the instances re-register within 5 s.
    await phase("etcd restarted", async () => {
      await etcd.start();
      const restartedAt = Date.now();
      await pollUntil(
        "user-service and order-service to be registered under live leases again",
        async () => ((await liveKeys(kv, [keyB, orderKey])) ? true : undefined),
        { timeoutMs: 5_000, intervalMs: 100 },
      );
      t.diagnostic(`registered under live leases ${Date.now() - restartedAt} ms after etcd restarted`);
      // Kept alive (or re-registered, had the outage outlasted the lease): still there a TTL later.
      await sleep(TTL_SECONDS * 1_000 + 1_000);
      assert.ok(await liveKeys(kv, [keyB, orderKey]), "still registered a TTL later");
    });

    // Phase 6: etcd back empty (its data lost): re-registration again within 5 s.
    await load.stop();
    await etcd.stop("SIGKILL");
    await etcd.start({ wipe: true });
    const wipedAt = Date.now();
    await pollUntil("the instances to re-register in an empty etcd", async () => ((await liveKeys(kv, [keyB, orderKey])) ? true : undefined), {
      timeoutMs: 5_000,
      intervalMs: 100,
    });
    t.diagnostic(`re-registered ${Date.now() - wipedAt} ms after etcd restarted empty`);
    await userB.waitForLog((line) => line.msg === "registered in etcd again", "about registering again", 1_000);
    const response = await orders.createOrder({ orderId: "after-wipe", userId: "u-1" });
    assert.equal(response.orderId, "after-wipe");
    assert.equal((await instancesOf("user-service")).get(keyB)?.value.toString(), userB.address);
  });
});

/** Whether every key exists and is attached to a live lease. */
async function liveKeys(kv: Etcd3, keys: readonly string[]): Promise<boolean> {
  for (const key of keys) {
    const listed = await kv.get(key).exec();
    const entry = listed.kvs[0];
    if (entry === undefined || entry.lease === "0") return false;
    const lease = await kv.leaseClient.leaseTimeToLive({ ID: entry.lease });
    if (Number(lease.TTL) <= 0) return false;
  }
  return true;
}

interface Load {
  readonly ok: number;
  readonly failures: ReadonlyArray<{ code: string; message: string }>;
  stop(): Promise<void>;
}

/** Steady CreateOrder calls (4 at a time, ~100/s) until stopped, each outcome counted. */
function startLoad(orders: Client<typeof OrderServiceDefinition>, userId: string): Load {
  let running = true;
  let sequence = 0;
  let ok = 0;
  const failures: Array<{ code: string; message: string }> = [];
  const worker = async (): Promise<void> => {
    while (running) {
      const orderId = `load-${sequence++}`;
      try {
        await orders.createOrder({ orderId, userId }, { timeoutMs: 3_000 });
        ok++;
      } catch (error) {
        const code = error instanceof ClientError ? Code[error.code] : "?";
        failures.push({ code: String(code), message: error instanceof Error ? error.message : String(error) });
      }
      await sleep(30);
    }
  };
  const workers = Promise.all(Array.from({ length: 4 }, worker));
  return {
    get ok() {
      return ok;
    },
    failures,
    async stop() {
      running = false;
      await workers;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("etcd discovery after etcd comes back empty", () => {
  it("keeps the instances it knew for a grace period while they put their keys back, then drops those that did not", async (t) => {
    const etcd = await startEtcd(t);
    const kv = new Etcd3({ hosts: etcd.endpoint });
    t.after(() => kv.close());
    await kv.put("/switchyard/user-service/a").value("10.0.0.1:1");
    await kv.put("/switchyard/user-service/b").value("10.0.0.2:1");
    const lists: { at: number; addresses: string }[] = [];
    const watch = etcdDiscovery.watch(
      { scheme: "etcd", authority: etcd.endpoint, path: "user-service", options: {} },
      { update: (addresses) => lists.push({ at: Date.now(), addresses: addresses.join(",") }), error: () => undefined },
    );
    t.after(() => watch.close());
    await pollUntil("both instances listed", () => (lists.at(-1)?.addresses === "10.0.0.1:1,10.0.0.2:1" ? true : undefined), { timeoutMs: 5_000 });
    await etcd.stop("SIGKILL");
    await etcd.start({ wipe: true });
    const back = Date.now();
    // Only a puts its key back; b never does (it died while etcd was away).
    const fresh = new Etcd3({ hosts: etcd.endpoint });
    t.after(() => fresh.close());
    await fresh.put("/switchyard/user-service/a").value("10.0.0.1:1");
    await pollUntil("b dropped after the grace", () => (lists.at(-1)?.addresses === "10.0.0.1:1" ? true : undefined), { timeoutMs: 10_000 });
    const dropped = lists.at(-1)?.at ?? 0;
    assert.ok(dropped - back >= 2_500, `b dropped ${dropped - back} ms after etcd came back`);
    assert.ok(
      lists.every((list) => list.addresses !== ""),
      `never an empty list: ${JSON.stringify(lists.map((list) => list.addresses))}`,
    );
  });
});
