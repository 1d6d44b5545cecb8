// The http2 client's decisions that need no socket: the grpc-timeout it
// sends, how it reads HTTP statuses, targets, retry delays, hedged methods and
// the retry budget.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveTarget } from "../../src/toolkit/client/http2/target.js";
import { dnsDiscovery } from "../../src/toolkit/discovery/dns-discovery.js";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { hedgedMethods, hedgingSettings, pushbackOf, retryDelayMs, RetryThrottle, retrySettings } from "../../src/toolkit/client/retry-policy.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { codeOfHttpStatus, formatGrpcTimeout, parseGrpcTimeout } from "../../src/toolkit/wire/protocol.js";

describe("grpc-timeout as the client sends it", () => {
  it("sends whole milliseconds, rounded up, at least 1", () => {
    assert.equal(formatGrpcTimeout(250), "250m");
    assert.equal(formatGrpcTimeout(0.2), "1m");
    assert.equal(formatGrpcTimeout(-5), "1m");
    assert.equal(formatGrpcTimeout(1234.1), "1235m");
  });

  it("switches to coarser units beyond 8 digits, never shortening the deadline", () => {
    const ms = 200_000_000; // 55.6 hours
    const sent = formatGrpcTimeout(ms);
    assert.match(sent, /^\d{1,8}S$/);
    assert.ok((parseGrpcTimeout(sent) ?? 0) >= ms);
    assert.match(formatGrpcTimeout(1e15), /^\d{1,8}H$/);
  });
});

describe("HTTP statuses of responses that are not gRPC", () => {
  it("maps them as doc/http-grpc-status-mapping.md does", () => {
    const mapped = [400, 401, 403, 404, 429, 502, 503, 504, 500, 302].map(codeOfHttpStatus);
    assert.deepEqual(mapped, [
      Code.INTERNAL,
      Code.UNAUTHENTICATED,
      Code.PERMISSION_DENIED,
      Code.UNIMPLEMENTED,
      Code.UNAVAILABLE,
      Code.UNAVAILABLE,
      Code.UNAVAILABLE,
      Code.UNAVAILABLE,
      Code.UNKNOWN,
      Code.UNKNOWN,
    ]);
  });
});

describe("targets the http2 client dials", () => {
  it("sends etcd: and static: targets to their discovery, with the service or first address as authority", () => {
    const etcd = resolveTarget("etcd:///user-service", { answer: 42 });
    assert.equal(etcd.discovery.scheme, "etcd");
    assert.deepEqual(etcd.target, { scheme: "etcd", authority: "", path: "user-service", options: { answer: 42 } });
    assert.equal(etcd.authority, "user-service");
    const listed = resolveTarget("static:///10.0.0.1:50051,10.0.0.2:50051", {});
    assert.equal(listed.discovery.scheme, "static");
    assert.equal(listed.authority, "10.0.0.1:50051");
  });

  it("looks host:port and dns:/// targets up in DNS, and reads ipv4: lists as static ones", () => {
    for (const [target, scheme, path] of [
      ["localhost:50051", "dns", "localhost:50051"],
      ["127.0.0.1:7", "dns", "127.0.0.1:7"],
      ["[::1]:50051", "dns", "[::1]:50051"],
      ["dns:///users.internal:443", "dns", "users.internal:443"],
      ["ipv4:10.0.0.1:1,10.0.0.2:2", "static", "10.0.0.1:1,10.0.0.2:2"],
    ] as const) {
      const resolved = resolveTarget(target, {});
      assert.equal(resolved.discovery.scheme, scheme, target);
      assert.equal(resolved.target.path, path, target);
    }
    assert.equal(resolveTarget("dns:///users.internal:443", {}).authority, "users.internal:443");
  });

  it("finds every address of a name, an IP address as itself, and says when a target is not name:port", async () => {
    const watchOnce = (path: string) =>
      new Promise<{ addresses?: readonly string[]; error?: string }>((resolve) => {
        const watch = dnsDiscovery.watch({ scheme: "dns", authority: "", path, options: {} }, {
          update: (addresses) => resolve({ addresses }),
          error: (error) => resolve({ error }),
        });
        setTimeout(() => watch.close(), 2_000).unref();
      });
    assert.ok((await watchOnce("localhost:4242")).addresses?.includes("127.0.0.1:4242"));
    assert.deepEqual(await watchOnce("[::1]:4242"), { addresses: ["[::1]:4242"] });
    assert.match((await watchOnce("no-port")).error ?? "", /not name:port/);
    assert.match((await watchOnce("name.invalid:1")).error ?? "", /cannot look up name\.invalid/);
  });

  it("refuses targets it cannot dial, saying which it can", () => {
    assert.throws(() => resolveTarget("unix:///tmp/socket", {}), /cannot dial "unix:\/\/\/tmp\/socket": give host:port/);
    assert.throws(() => resolveTarget("localhost", {}), /cannot dial/);
  });
});

describe("retry delays (gRFC A6)", () => {
  const settings = retrySettings({ initialBackoffMs: 100, maxBackoffMs: 300, backoffMultiplier: 2 });

  it("waits a random time up to the exponential backoff, capped", () => {
    for (let i = 0; i < 200; i++) {
      const first = retryDelayMs(settings, 1, undefined) ?? -1;
      const third = retryDelayMs(settings, 3, undefined) ?? -1;
      assert.ok(first >= 0 && first < 100, `first ${first}`);
      assert.ok(third >= 0 && third < 300, `third ${third} is capped at the maximum`);
    }
  });

  it("follows the server's pushback, and stops when the pushback is not a whole number", () => {
    assert.equal(retryDelayMs(settings, 1, { "grpc-retry-pushback-ms": "1500" }), 1500);
    assert.equal(retryDelayMs(settings, 1, { "grpc-retry-pushback-ms": "-1" }), undefined);
    assert.equal(retryDelayMs(settings, 1, { "grpc-retry-pushback-ms": "soon" }), undefined);
  });

  it("reads a pushback as a delay, a stop, or nothing sent (what a hedge waits for)", () => {
    assert.equal(pushbackOf({ "grpc-retry-pushback-ms": "0" }), 0);
    assert.equal(pushbackOf({ "grpc-retry-pushback-ms": "-1" }), "stop");
    assert.equal(pushbackOf({}), undefined);
    assert.equal(pushbackOf(undefined), undefined);
  });
});

describe("hedged methods", () => {
  it("finds reads by their proto name, with 2 attempts 100 ms apart by default", () => {
    assert.deepEqual(hedgedMethods([UserServiceDefinition], { methods: ["GetUser"] }), [UserServiceDefinition.methods.getUser]);
    assert.deepEqual(hedgedMethods([UserServiceDefinition], undefined), []);
    assert.deepEqual(hedgingSettings({ methods: ["GetUser"] }), { maxAttempts: 2, delayMs: 100 });
  });

  it("refuses a method that is not a read, or that the channel's services lack", () => {
    assert.throws(() => hedgedMethods([UserServiceDefinition], { methods: ["CreateUser"] }), /cannot hedge CreateUser: only methods the proto marks NO_SIDE_EFFECTS/);
    assert.throws(() => hedgedMethods([UserServiceDefinition], { methods: ["GetOrderByUser"] }), /cannot hedge GetOrderByUser/);
  });
});

describe("the retry budget", () => {
  it("stops retries once half the tokens are spent, and earns them back a tenth per success", () => {
    const throttle = new RetryThrottle();
    for (let i = 0; i < 49; i++) throttle.failed();
    assert.equal(throttle.allowsRetry, true, "51 of 100 tokens left");
    throttle.failed();
    assert.equal(throttle.allowsRetry, false, "50 left: no more retries");
    for (let i = 0; i < 10; i++) throttle.succeeded();
    assert.equal(throttle.allowsRetry, true, "ten successes earn one token back");
  });
});
