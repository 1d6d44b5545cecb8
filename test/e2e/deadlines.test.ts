import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code } from "../../src/toolkit/rpc/code.js";
import type { ServerCall, ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { configName, ENGINES, expectCallError, startSystem, type System, type Topology, within } from "../support/system.js";
import { stallMeter } from "../support/stall-meter.js";

/** How long a blocked GetUser waits for its signal before giving up on it. */
const BLOCK_LIMIT_MS = 5_000;
/** What a client inside a handler keeps back from the inbound deadline (createClient's default). */
const DEFAULT_MARGIN_MS = 20;

/** What UserService saw of one GetUser call. */
interface Observation {
  /** When the call entered the interceptor (epoch ms). */
  readonly enteredAt: number;
  /** The deadline the handler saw. */
  readonly deadline: number | undefined;
  /** When its signal aborted (epoch ms), or undefined if it did not within BLOCK_LIMIT_MS. */
  readonly abortedAt: number | undefined;
}

function isGetUserFor(call: ServerCall, userId: string): boolean {
  if (call.service !== "service.UserService" || call.method !== "GetUser") return false;
  const request = call.request;
  return typeof request === "object" && request !== null && "userId" in request && request.userId === userId;
}

/** Resolves when `signal` aborts, or after `ms`, with whether it aborted. */
function abortedWithin(signal: AbortSignal, ms: number): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(false);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * An interceptor for UserService that holds GetUser for `userId` until the
 * call's signal aborts, and reports what it saw. `entered` resolves when the
 * call arrives, `observed` when the hold ends.
 */
function holdGetUser(userId: string): {
  interceptor: ServerInterceptor;
  entered: Promise<void>;
  observed: Promise<Observation>;
} {
  let markEntered: () => void = () => undefined;
  let report: (observation: Observation) => void = () => undefined;
  const entered = new Promise<void>((resolve) => (markEntered = resolve));
  const observed = new Promise<Observation>((resolve) => (report = resolve));
  const interceptor: ServerInterceptor = async (call, next) => {
    if (!isGetUserFor(call, userId)) return next();
    const enteredAt = Date.now();
    markEntered();
    const aborted = await abortedWithin(call.context.signal, BLOCK_LIMIT_MS);
    report({ enteredAt, deadline: call.context.deadline, abortedAt: aborted ? Date.now() : undefined });
    // A handler that sees its caller gone gives up.
    call.context.signal.throwIfAborted();
    return next();
  };
  return { interceptor, entered, observed };
}

const TOPOLOGIES: readonly Topology[] = ["split", "single"];

for (const [topology, engine] of TOPOLOGIES.flatMap((t) => ENGINES.map((e) => [t, e] as const))) {
  const config = { topology, store: "sqlite", engine } as const;
  describe(`deadlines and cancellation reach UserService, ${configName(config)}`, () => {
    let system: System | undefined;
    const sys = (): System => {
      assert.ok(system, "the system did not start");
      return system;
    };
    const newUser = async (): Promise<string> => {
      const userId = `user-${randomUUID()}`;
      await sys().user.createUser({ userId, name: "Ada Lovelace", email: "ada@example.com" });
      return userId;
    };

    before(async () => {
      system = await startSystem(config);
      // Warm up: OrderService's channel to UserService connects on first use, and
      // connecting must not eat the short deadlines below.
      const userId = await newUser();
      await system.order.createOrder({ orderId: `order-${randomUUID()}`, userId });
    });
    after(async () => {
      await system?.close();
    });

    it("a 300 ms CreateOrder deadline aborts UserService's GetUser at that deadline, and no order is written", async (t) => {
      const userId = await newUser();
      // On a loaded machine the 300 ms can run out before OrderService even calls
      // UserService; then this attempt shows nothing, and another is made.
      for (let attempt = 1; ; attempt++) {
        const hold = holdGetUser(userId);
        const remove = sys().addInterceptor("user", hold.interceptor);
        const stall = stallMeter();
        try {
          const startedAt = Date.now();
          const call = sys().order.createOrder({ orderId: `order-${randomUUID()}`, userId }, { timeoutMs: 300 });
          const clientDeadline = Date.now() + 300;
          await expectCallError(call, { code: Code.DEADLINE_EXCEEDED });
          const failedAt = Date.now();
          const elapsed = failedAt - startedAt;
          // About 300 ms (plus any time the process could not run), far from the 5 s
          // UserService would hold the call without the deadline.
          assert.ok(
            elapsed >= 250 && elapsed < 600 + stall.read(),
            `the client gave up after ${elapsed} ms, expected about 300`,
          );

          const reached = await within(hold.entered, 1_000, "GetUser reaching UserService").then(
            () => true,
            () => false,
          );
          if (!reached) {
            assert.ok(attempt < 3, "in 3 attempts, OrderService never called UserService within the 300 ms");
            t.diagnostic(`attempt ${attempt}: the deadline passed before GetUser reached UserService; trying again`);
            continue;
          }
          const seen = await within(hold.observed, BLOCK_LIMIT_MS + 1_000, "UserService's report");
          const stalledMs = stall.read();
          assert.ok(seen.abortedAt !== undefined, "UserService's GetUser was never aborted");
          const lag = seen.abortedAt - clientDeadline;
          // Timers fire late when the process cannot run (a loaded CI machine): that much is allowed on top.
          t.diagnostic(
            `client failed after ${elapsed} ms; UserService saw the abort ${lag} ms from the client's deadline ` +
              `(the event loop stalled ${stalledMs} ms in all)`,
          );
          assert.ok(lag >= -100, `UserService's call was aborted ${-lag} ms before the client's deadline`);
          assert.ok(lag <= 100 + stalledMs, `UserService saw the abort ${lag} ms after the client's deadline`);
          break;
        } finally {
          stall.stop();
          remove();
        }
      }
      const { orders } = await sys().order.listOrdersByUser({ userId, limit: 0 });
      assert.deepEqual(orders, [], "an order was written after the caller's deadline");
    });

    it("a client that cancels CreateOrder mid-call cancels UserService's GetUser, and no order is written", async (t) => {
      const userId = await newUser();
      const hold = holdGetUser(userId);
      const remove = sys().addInterceptor("user", hold.interceptor);
      try {
        const controller = new AbortController();
        const call = sys().order.createOrder(
          { orderId: `order-${randomUUID()}`, userId },
          { timeoutMs: 10_000, signal: controller.signal },
        );
        await within(hold.entered, 5_000, "GetUser reaching UserService");
        const cancelledAt = Date.now();
        controller.abort();
        await expectCallError(call, { code: Code.CANCELLED });

        const seen = await within(hold.observed, BLOCK_LIMIT_MS + 1_000, "UserService's report");
        assert.ok(seen.abortedAt !== undefined, "UserService's GetUser did not see the cancellation");
        const lag = seen.abortedAt - cancelledAt;
        t.diagnostic(`UserService saw the cancellation ${lag} ms after the client cancelled`);
        assert.ok(lag <= 1_000, `UserService saw the cancellation ${lag} ms after the client cancelled`);
      } finally {
        remove();
      }
      const { orders } = await sys().order.listOrdersByUser({ userId, limit: 0 });
      assert.deepEqual(orders, [], "an order was written after the caller cancelled");
    });

    it("UserService's GetUser sees a deadline no later than the CreateOrder caller's", async (t) => {
      const userId = await newUser();
      const deadlines: (number | undefined)[] = [];
      const enteredAt: number[] = [];
      const remove = sys().addInterceptor("user", (call, next) => {
        if (isGetUserFor(call, userId)) {
          deadlines.push(call.context.deadline);
          enteredAt.push(Date.now());
        }
        return next();
      });
      try {
        const callStart = Date.now();
        const call = sys().order.createOrder({ orderId: `order-${randomUUID()}`, userId }, { timeoutMs: 2_000 });
        const callReturned = Date.now();
        await call;
        // The client computed its deadline between these two instants.
        const earliest = callStart + 2_000;
        const latest = callReturned + 2_000;
        assert.equal(deadlines.length, 1, "GetUser was not called exactly once");
        const seen = deadlines[0];
        assert.ok(seen !== undefined, "UserService's GetUser had no deadline");
        // gRPC sends a deadline as a relative grpc-timeout, which each server adds to
        // the time it reads the request: time spent in transit moves the deadline
        // later. OrderService keeps a margin back (20 ms by default) that absorbs it
        // on an idle machine; beyond that, the transit time itself is allowed.
        const transit = (enteredAt[0] ?? callReturned) - callReturned;
        const allowed = latest + Math.max(0, transit - DEFAULT_MARGIN_MS);
        t.diagnostic(
          `UserService's deadline is ${latest - seen} to ${earliest - seen} ms before the client's (transit ${transit} ms)`,
        );
        assert.ok(seen <= allowed, `UserService's deadline is ${seen - latest} ms later than the client's`);
        // Propagated, not a default of its own: close to the caller's, less the margin kept back.
        assert.ok(seen >= earliest - 100, `UserService's deadline is ${earliest - seen} ms earlier than the client's`);
      } finally {
        remove();
      }
    });
  });
}
