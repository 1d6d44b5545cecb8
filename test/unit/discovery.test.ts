// Discovery without etcd: the static: resolver and round robin, registry URL
// parsing, and how etcd: targets fail when no etcd can answer.
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it, type TestContext } from "node:test";
import { startSwitchyard } from "../../src/app/switchyard.js";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { experimental } from "@grpc/grpc-js";
import type { Discovery, EndpointListener } from "../../src/toolkit/discovery/discovery.js";
import { parseEtcdUrl } from "../../src/toolkit/discovery/etcd-client.js";
import { etcdChannelOptions } from "../../src/toolkit/discovery/etcd-discovery.js";
import { resolverFor } from "../../src/toolkit/discovery/grpc-resolver.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";

/** A UserService replica in this process that counts the calls it answers. */
async function replica(t: TestContext): Promise<{ port: number; calls: () => number }> {
  let calls = 0;
  const count: ServerInterceptor = (_call, next) => {
    calls++;
    return next();
  };
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-discovery-unit-"));
  const app = await startSwitchyard({
    services: ["user"],
    host: "127.0.0.1",
    port: 0,
    dataDir,
    interceptors: [count],
    logger: silentLogger(),
  });
  t.after(async () => {
    await app.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  return { port: app.port, calls: () => calls };
}

async function expectUnavailable(call: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof ClientError, String(error));
    assert.equal(error.code, Code.UNAVAILABLE, error.message);
    assert.match(error.message, message);
    return true;
  });
}

describe("static: targets", () => {
  it("spread calls round-robin over every listed address, host names included", async (t) => {
    const [a, b] = await Promise.all([replica(t), replica(t)]);
    const transport = createGrpcTransport({
      target: `static:///127.0.0.1:${a.port},localhost:${b.port}`,
      services: [UserServiceDefinition],
      // The calls below all answer NOT_FOUND, which outlier detection counts
      // as failures: this test is about round robin alone.
      outlierDetection: false,
    });
    t.after(() => transport.close());
    const users = createClient(UserServiceDefinition, transport);
    // Both connect; then the calls alternate.
    for (let i = 0; i < 20; i++) await users.getUser({ userId: "nobody" }).catch(() => undefined);
    const before = { a: a.calls(), b: b.calls() };
    for (let i = 0; i < 20; i++) await users.getUser({ userId: "nobody" }).catch(() => undefined);
    const onA = a.calls() - before.a;
    const onB = b.calls() - before.b;
    assert.equal(onA + onB, 20);
    assert.ok(onA >= 8 && onB >= 8, `round robin: A ${onA}, B ${onB}`);
  });

  it("keep working on the remaining address when one replica is down", async (t) => {
    const a = await replica(t);
    const transport = createGrpcTransport({
      // Port 1 on loopback: nothing listens there.
      target: `static:///127.0.0.1:1,127.0.0.1:${a.port}`,
      services: [UserServiceDefinition],
    });
    t.after(() => transport.close());
    const users = createClient(UserServiceDefinition, transport);
    for (let i = 0; i < 10; i++) {
      await assert.rejects(users.getUser({ userId: "nobody" }), (error: unknown) => error instanceof ClientError && error.code === Code.NOT_FOUND);
    }
    assert.equal(a.calls(), 10);
    // The dead endpoint's reconnection attempts must not turn into a busy
    // loop of re-resolution: the process stays nearly idle.
    const cpuBefore = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMs = (cpu.user + cpu.system) / 1_000;
    assert.ok(cpuMs < 300, `${Math.round(cpuMs)} ms of CPU in 1 s while an endpoint is down`);
  });
});

describe("etcd: targets without a reachable etcd", () => {
  it("etcd:/// with no registry configured fails fast, naming what is missing", async (t) => {
    const transport = createGrpcTransport({ target: "etcd:///user-service", services: [UserServiceDefinition], retry: false });
    t.after(() => transport.close());
    const users = createClient(UserServiceDefinition, transport);
    await expectUnavailable(users.getUser({ userId: "u" }, { timeoutMs: 2_000 }), /--registry/);
  });

  it("an etcd that never answered fails the calls with UNAVAILABLE, not a hang", async (t) => {
    const transport = createGrpcTransport({
      target: "etcd:///user-service",
      services: [UserServiceDefinition],
      retry: false,
      channelOptions: etcdChannelOptions("etcd://127.0.0.1:1"),
    });
    t.after(() => transport.close());
    const users = createClient(UserServiceDefinition, transport);
    const started = performance.now();
    await expectUnavailable(users.getUser({ userId: "u" }, { timeoutMs: 5_000 }), /etcd at 127\.0\.0\.1:1/);
    assert.ok(performance.now() - started < 4_000, "fails before the deadline");
  });
});

/** A discovery under a scheme of its own whose lists the test sets: `set(["host:port", …])`. */
function scriptedDiscovery(scheme: string): { set(addresses: readonly string[]): void } {
  let listener: EndpointListener | undefined;
  let pending: readonly string[] | undefined;
  const discovery: Discovery = {
    scheme,
    authorityOf: (target) => target.path,
    watch(_target, watcher) {
      listener = watcher;
      const first = pending;
      if (first !== undefined) setImmediate(() => watcher.update(first));
      return { close: () => (listener = undefined) };
    },
  };
  experimental.registerResolver(scheme, resolverFor(discovery));
  return {
    set(addresses) {
      pending = addresses;
      listener?.update(addresses);
    },
  };
}

describe("a discovery that lists no instance", () => {
  it("fails calls at once with UNAVAILABLE, naming the service, instead of holding them until their deadline", async (t) => {
    const discovery = scriptedDiscovery("scripted-empty");
    discovery.set([]);
    const transport = createGrpcTransport({ target: "scripted-empty:///user-service", services: [UserServiceDefinition] });
    t.after(() => transport.close());
    const users = createClient(UserServiceDefinition, transport);
    const started = performance.now();
    await expectUnavailable(users.getUser({ userId: "u" }, { timeoutMs: 5_000 }), /no instances of user-service are registered/);
    assert.ok(performance.now() - started < 1_000, "fails before the deadline");
  });

  it("once every listed instance is gone, calls still fail fast on the last ones (a crash, then its lease expiring)", async (t) => {
    const discovery = scriptedDiscovery("scripted-gone");
    const live = await replica(t);
    discovery.set([`127.0.0.1:${live.port}`]);
    const transport = createGrpcTransport({ target: "scripted-gone:///user-service", services: [UserServiceDefinition] });
    t.after(() => transport.close());
    const users = createClient(UserServiceDefinition, transport);
    await users.createUser({ userId: "u-1", name: "Ada", email: "ada@example.com" });
    // The replica "crashes" (its address now refuses connections), then its registration expires.
    discovery.set(["127.0.0.1:1"]);
    for (let refused = false, i = 0; !refused; i++) {
      assert.ok(i < 50, "calls to the dead address fail");
      refused = await users.getUser({ userId: "u-1" }, { timeoutMs: 1_000 }).then(
        () => false,
        (error: unknown) => error instanceof ClientError && error.code === Code.UNAVAILABLE,
      );
      if (!refused) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    discovery.set([]);
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await expectUnavailable(users.getUser({ userId: "u-1" }, { timeoutMs: 5_000 }), /.+/);
      assert.ok(performance.now() - started < 1_000, "fails before the deadline");
    }
    // Registered again: calls flow at once.
    discovery.set([`127.0.0.1:${live.port}`]);
    assert.equal((await users.getUser({ userId: "u-1" }, { timeoutMs: 5_000 })).name, "Ada");
  });
});

describe("parseEtcdUrl", () => {
  it("accepts one or more host:port endpoints", () => {
    assert.deepEqual(parseEtcdUrl("etcd://127.0.0.1:2379"), ["127.0.0.1:2379"]);
    assert.deepEqual(parseEtcdUrl("etcd://etcd-1:2379,etcd-2:2379/"), ["etcd-1:2379", "etcd-2:2379"]);
    assert.deepEqual(parseEtcdUrl("etcd://[::1]:2379"), ["[::1]:2379"]);
  });

  it("rejects anything else with an example", () => {
    for (const bad of ["127.0.0.1:2379", "http://127.0.0.1:2379", "etcd://", "etcd://host", "etcd://h:1/user-service"]) {
      assert.throws(() => parseEtcdUrl(bad), /etcd:\/\/127\.0\.0\.1:2379/, bad);
    }
  });
});
