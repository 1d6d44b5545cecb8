// Outlier detection on a real channel: two UserService replicas on port 0
// behind a static:///a,b target. Only failures that say something about an
// endpoint eject it; an application status such as NOT_FOUND never does.
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { startUserReplica, type UserReplica } from "../support/user-replica.js";

const INTERVAL_MS = 100;
const BASE_EJECTION_MS = 1_000;

/** A client over both replicas, judged every 100 ms, ejecting for 1 s; no retries, so every failure is seen. */
function clientOver(t: TestContext, replicas: readonly UserReplica[]) {
  const transport = createGrpcTransport({
    target: `static:///${replicas.map((replica) => replica.address).join(",")}`,
    services: [UserServiceDefinition],
    retry: false,
    outlierDetection: { intervalMs: INTERVAL_MS, baseEjectionTimeMs: BASE_EJECTION_MS, requestVolume: 3 },
  });
  t.after(() => transport.close());
  return createClient(UserServiceDefinition, transport);
}

/** Four GetUser calls at once; what they answered, and how many reached `replica`. */
async function round(
  users: ReturnType<typeof clientOver>,
  replica: UserReplica,
  userId: string,
): Promise<{ codes: Code[]; onReplica: number }> {
  const before = replica.calls;
  const codes = await Promise.all(
    Array.from({ length: 4 }, () =>
      users.getUser({ userId }, { timeoutMs: 5_000 }).then(
        () => Code.OK,
        (error: unknown) => (error instanceof ClientError ? error.code : Code.UNKNOWN),
      ),
    ),
  );
  return { codes, onReplica: replica.calls - before };
}

describe("outlier detection by endpoint failures (static:///a,b)", () => {
  it("keeps a replica in rotation that answers NOT_FOUND to every call, over many intervals", async (t) => {
    const [a, b] = await Promise.all([startUserReplica(t), startUserReplica(t)]);
    assert.ok(a && b);
    // The user exists on B only: A answers every GetUser with NOT_FOUND.
    const direct = createGrpcTransport({ target: b.address, services: [UserServiceDefinition] });
    await createClient(UserServiceDefinition, direct).createUser({ userId: "u-b", name: "Ada", email: "ada@example.com" });
    direct.close();
    const users = clientOver(t, [a, b]);

    // At least 20 judgements (2 s) with far more than the request volume on A each time.
    const started = performance.now();
    const perRound: number[] = [];
    // The longest time A went without a call: an ejection would last at least BASE_EJECTION_MS.
    let lastOnA = performance.now();
    let longestWithoutA = 0;
    let notFound = 0;
    while (performance.now() - started < 20 * INTERVAL_MS || perRound.length < 40) {
      const { codes, onReplica } = await round(users, a, "u-b");
      perRound.push(onReplica);
      const now = performance.now();
      if (onReplica > 0) lastOnA = now;
      longestWithoutA = Math.max(longestWithoutA, now - lastOnA);
      notFound += codes.filter((code) => code === Code.NOT_FOUND).length;
      assert.ok(codes.every((code) => code === Code.OK || code === Code.NOT_FOUND), codes.join(","));
    }
    const calls = perRound.length * 4;
    const onA = perRound.reduce((sum, n) => sum + n, 0);
    const lastTen = perRound.slice(-10).reduce((sum, n) => sum + n, 0);
    t.diagnostic(`${calls} calls in ${Math.round(performance.now() - started)} ms: ${onA} on A (all NOT_FOUND: ${notFound}), ${lastTen} of the last 40 on A`);
    assert.equal(notFound, onA, "every call that reached A was answered NOT_FOUND");
    assert.ok(onA >= calls * 0.4 && onA <= calls * 0.6, `A keeps its share: ${onA} of ${calls}`);
    assert.ok(lastTen >= 10, `A still serves at the end: ${lastTen} of the last 40 calls`);
    // Round robin may send one round of four all to B when its picker is replaced (every interval); never for long.
    assert.ok(longestWithoutA < BASE_EJECTION_MS / 2, `A went ${Math.round(longestWithoutA)} ms without a call: ejected`);
  });

  it("ejects a replica that answers UNAVAILABLE, and returns it to rotation once the ejection time is over", async (t) => {
    const [a, b] = await Promise.all([startUserReplica(t), startUserReplica(t)]);
    assert.ok(a && b);
    for (const replica of [a, b]) {
      const direct = createGrpcTransport({ target: replica.address, services: [UserServiceDefinition] });
      await createClient(UserServiceDefinition, direct).createUser({ userId: "u-1", name: "Ada", email: "ada@example.com" });
      direct.close();
    }
    const users = clientOver(t, [a, b]);
    for (let i = 0; i < 5; i++) assert.deepEqual((await round(users, a, "u-1")).codes, [Code.OK, Code.OK, Code.OK, Code.OK]);
    assert.ok(a.calls > 0 && b.calls > 0, "both replicas serve");

    // Failing: calls fail until A is ejected, then 10 rounds in a row succeed with none on A.
    a.fault = "unavailable";
    const failingAt = performance.now();
    let lastFailureAt = failingAt;
    let failed = 0;
    let streak = 0;
    while (streak < 10) {
      assert.ok(performance.now() - failingAt < 10_000, "the failing replica was never ejected");
      const roundStarted = performance.now();
      const { codes, onReplica } = await round(users, a, "u-1");
      const failures = codes.filter((code) => code === Code.UNAVAILABLE).length;
      assert.equal(failures, onReplica, "the calls that failed are the ones A answered");
      failed += failures;
      if (failures > 0) lastFailureAt = roundStarted;
      streak = onReplica === 0 ? streak + 1 : 0;
    }
    t.diagnostic(`A failing: ${failed} calls failed, ejected within ${Math.round(performance.now() - failingAt)} ms`);
    assert.ok(failed >= 3, "A was judged on its failures");

    // Healthy again, but ejected: no call until its ejection time is over, then its share.
    a.fault = "none";
    const callsBefore = a.calls;
    while (a.calls === callsBefore) {
      assert.ok(performance.now() - lastFailureAt < BASE_EJECTION_MS + 5_000, "A never returned to rotation");
      assert.deepEqual((await round(users, a, "u-1")).codes, [Code.OK, Code.OK, Code.OK, Code.OK]);
    }
    const returnedAfterMs = performance.now() - lastFailureAt;
    t.diagnostic(`A called again ${Math.round(returnedAfterMs)} ms after its last failed call began (ejection ${BASE_EJECTION_MS} ms)`);
    assert.ok(returnedAfterMs >= BASE_EJECTION_MS - 20, `not before its ejection time: ${Math.round(returnedAfterMs)} ms`);
    let backOnA = 0;
    for (let i = 0; i < 10; i++) backOnA += (await round(users, a, "u-1")).onReplica;
    assert.ok(backOnA >= 10, `A serves its share again: ${backOnA} of 40`);
  });
});
