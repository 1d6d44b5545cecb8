// The http2 client's decisions that need no socket: the grpc-timeout it
// sends, how it reads HTTP statuses, targets, retry delays and the retry budget.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveTarget } from "../../src/toolkit/client/http2/target.js";
import { retryDelayMs, RetryThrottle, retrySettings } from "../../src/toolkit/client/retry-policy.js";
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

  it("reads host:port, dns:/// and ipv4: targets as static lists", () => {
    for (const [target, path] of [
      ["localhost:50051", "localhost:50051"],
      ["127.0.0.1:7", "127.0.0.1:7"],
      ["[::1]:50051", "[::1]:50051"],
      ["dns:///users.internal:443", "users.internal:443"],
      ["ipv4:10.0.0.1:1,10.0.0.2:2", "10.0.0.1:1,10.0.0.2:2"],
    ] as const) {
      const resolved = resolveTarget(target, {});
      assert.equal(resolved.discovery.scheme, "static", target);
      assert.equal(resolved.target.path, path, target);
    }
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
