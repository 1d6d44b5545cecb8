import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type EjectionSettings, EndpointEjection, ejectionSettings } from "../../src/toolkit/client/endpoint-ejection.js";
import { endpointVerdict } from "../../src/toolkit/client/endpoint-verdict.js";
import { Code } from "../../src/toolkit/rpc/code.js";

const SETTINGS: EjectionSettings = ejectionSettings({ intervalMs: 1_000, baseEjectionTimeMs: 5_000, maxEjectionTimeMs: 12_000 });

/** An ejection over `endpoints`, with a clock the test moves one interval at a time. */
function ejectionOver(endpoints: readonly string[], settings: EjectionSettings = SETTINGS) {
  const ejection = new EndpointEjection<string>(settings);
  ejection.setEndpoints(endpoints);
  let now = 0;
  return {
    ejection,
    /** Records `count` attempts ending with `code` on `endpoint`. */
    answer(endpoint: string, code: Code, count: number): void {
      for (let i = 0; i < count; i++) ejection.record(endpoint, endpointVerdict(code));
    },
    /** Ends the interval: one judgement, `settings.intervalMs` later than the last. */
    tick() {
      now += settings.intervalMs;
      return ejection.judge(now);
    },
    /** Ends intervals with no attempts until `endpoint` returns; how many it took. */
    ticksUntilReturned(endpoint: string): number {
      for (let ticks = 1; ticks < 1_000; ticks++) if (this.tick().returned.includes(endpoint)) return ticks;
      throw new Error(`${endpoint} never returned`);
    },
  };
}

describe("endpoint verdicts", () => {
  it("endpoint failures are UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN and DATA_LOSS", () => {
    for (const code of [Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.UNKNOWN, Code.DATA_LOSS]) {
      assert.equal(endpointVerdict(code), "failed", Code[code]);
    }
  });

  it("application statuses, load shedding and UNIMPLEMENTED are healthy answers", () => {
    for (const code of [
      Code.OK,
      Code.NOT_FOUND,
      Code.INVALID_ARGUMENT,
      Code.FAILED_PRECONDITION,
      Code.ALREADY_EXISTS,
      Code.PERMISSION_DENIED,
      Code.UNAUTHENTICATED,
      Code.ABORTED,
      Code.OUT_OF_RANGE,
      Code.RESOURCE_EXHAUSTED,
      Code.UNIMPLEMENTED,
    ]) {
      assert.equal(endpointVerdict(code), "healthy", Code[code]);
    }
  });

  it("a cancelled attempt says nothing about the endpoint", () => {
    assert.equal(endpointVerdict(Code.CANCELLED), "ignored");
  });
});

describe("endpoint ejection", () => {
  it("ejects an endpoint whose attempts fail as an endpoint more than the failure percentage", () => {
    const clock = ejectionOver(["a", "b"]);
    clock.answer("a", Code.UNAVAILABLE, 6);
    clock.answer("a", Code.OK, 4);
    clock.answer("b", Code.OK, 10);
    assert.deepEqual(clock.tick(), { ejected: ["a"], returned: [] });
    assert.equal(clock.ejection.isEjected("a"), true);
    assert.equal(clock.ejection.isEjected("b"), false);
  });

  it("never ejects an endpoint that answers every call with NOT_FOUND, whatever the volume", () => {
    const clock = ejectionOver(["a", "b"]);
    for (let interval = 0; interval < 10; interval++) {
      clock.answer("a", Code.NOT_FOUND, 1_000);
      clock.answer("b", Code.OK, 10);
      assert.deepEqual(clock.tick(), { ejected: [], returned: [] });
    }
  });

  it("does not eject at exactly the failure percentage, only above it", () => {
    const clock = ejectionOver(["a", "b"]);
    clock.answer("a", Code.INTERNAL, 5);
    clock.answer("a", Code.OK, 5);
    assert.deepEqual(clock.tick().ejected, []);
  });

  it("does not judge an endpoint with fewer attempts than the request volume, cancelled ones not counted", () => {
    const clock = ejectionOver(["a", "b"]);
    clock.answer("a", Code.UNAVAILABLE, 4);
    clock.answer("a", Code.CANCELLED, 100);
    assert.deepEqual(clock.tick().ejected, []);
    clock.answer("a", Code.UNAVAILABLE, 5);
    assert.deepEqual(clock.tick().ejected, ["a"]);
  });

  it("judges each interval on its own: failures spread thinly over many intervals eject nothing", () => {
    const clock = ejectionOver(["a", "b"]);
    for (let interval = 0; interval < 10; interval++) {
      clock.answer("a", Code.UNAVAILABLE, 3);
      assert.deepEqual(clock.tick().ejected, []);
    }
  });

  it("returns an ejected endpoint once the base ejection time is over", () => {
    const clock = ejectionOver(["a", "b"]);
    clock.answer("a", Code.UNAVAILABLE, 5);
    clock.tick();
    assert.equal(clock.ticksUntilReturned("a"), 5);
    assert.equal(clock.ejection.isEjected("a"), false);
  });

  it("ejects again for longer each time in a row, up to the maximum ejection time", () => {
    const clock = ejectionOver(["a", "b"]);
    const lengths: number[] = [];
    for (let ejection = 0; ejection < 4; ejection++) {
      clock.answer("a", Code.DEADLINE_EXCEEDED, 5);
      assert.deepEqual(clock.tick().ejected, ["a"]);
      lengths.push(clock.ticksUntilReturned("a"));
    }
    // 5 s, 10 s, then capped at 12 s.
    assert.deepEqual(lengths, [5, 10, 12, 12]);
  });

  it("forgets past ejections one healthy interval at a time", () => {
    const clock = ejectionOver(["a", "b"]);
    for (let ejection = 0; ejection < 2; ejection++) {
      clock.answer("a", Code.UNAVAILABLE, 5);
      clock.tick();
      clock.ticksUntilReturned("a");
    }
    // Ejected twice in a row: one healthy interval lowers the multiplier to 1, so the next ejection lasts 10 s…
    clock.answer("a", Code.OK, 5);
    clock.tick();
    clock.answer("a", Code.UNAVAILABLE, 5);
    assert.deepEqual(clock.tick().ejected, ["a"]);
    assert.equal(clock.ticksUntilReturned("a"), 10);
    // …and two intervals without one bring it to 0: 5 s again.
    clock.tick();
    clock.tick();
    clock.answer("a", Code.UNAVAILABLE, 5);
    clock.tick();
    assert.equal(clock.ticksUntilReturned("a"), 5);
  });

  it("does not judge the late failures an ejected endpoint answers, so it is not ejected again as it returns", () => {
    const clock = ejectionOver(["a", "b"]);
    clock.answer("a", Code.DEADLINE_EXCEEDED, 5);
    clock.tick();
    for (let interval = 0; interval < 4; interval++) {
      // Calls stuck on it when it was ejected, ending at their deadlines.
      clock.answer("a", Code.DEADLINE_EXCEEDED, 5);
      assert.deepEqual(clock.tick(), { ejected: [], returned: [] });
    }
    clock.answer("a", Code.DEADLINE_EXCEEDED, 5);
    assert.deepEqual(clock.tick(), { ejected: [], returned: ["a"] });
    assert.deepEqual(clock.tick(), { ejected: [], returned: [] });
  });

  it("with two endpoints, ejects one of them at most, even when both fail", () => {
    const clock = ejectionOver(["a", "b"]);
    clock.answer("a", Code.UNAVAILABLE, 10);
    clock.answer("b", Code.UNAVAILABLE, 8);
    clock.answer("b", Code.OK, 2);
    assert.deepEqual(clock.tick().ejected, ["a"], "the most failing one");
    clock.answer("b", Code.UNAVAILABLE, 10);
    assert.deepEqual(clock.tick().ejected, []);
  });

  it("never ejects more endpoints than maxEjectionPercent allows, rounded down, one of two or more at least, never all", () => {
    const cases: Array<{ endpoints: number; percent: number; most: number }> = [
      { endpoints: 1, percent: 50, most: 0 },
      { endpoints: 1, percent: 100, most: 0 },
      { endpoints: 2, percent: 10, most: 1 },
      { endpoints: 3, percent: 50, most: 1 },
      { endpoints: 4, percent: 50, most: 2 },
      { endpoints: 10, percent: 30, most: 3 },
      { endpoints: 4, percent: 0, most: 0 },
      { endpoints: 3, percent: 100, most: 2 },
    ];
    for (const { endpoints, percent, most } of cases) {
      const names = Array.from({ length: endpoints }, (_, i) => `e${i}`);
      const clock = ejectionOver(names, ejectionSettings({ ...SETTINGS, maxEjectionPercent: percent }));
      for (const name of names) clock.answer(name, Code.UNAVAILABLE, 5);
      assert.equal(clock.tick().ejected.length, most, `${endpoints} endpoints at ${percent} %`);
      for (const name of names) clock.answer(name, Code.UNAVAILABLE, 5);
      assert.equal(clock.tick().ejected.length, 0, `${endpoints} endpoints at ${percent} %: no more in the next interval`);
    }
  });

  it("ejects another endpoint once an ejected one has returned and the cap allows it", () => {
    const clock = ejectionOver(["a", "b"]);
    clock.answer("a", Code.UNAVAILABLE, 5);
    clock.tick();
    for (let interval = 0; interval < 4; interval++) {
      clock.answer("b", Code.UNAVAILABLE, 5);
      assert.deepEqual(clock.tick().ejected, []);
    }
    clock.answer("b", Code.UNAVAILABLE, 5);
    assert.deepEqual(clock.tick(), { ejected: ["b"], returned: ["a"] });
  });

  it("forgets endpoints the resolver no longer lists, and starts new ones clean", () => {
    const clock = ejectionOver(["a", "b", "c"]);
    clock.answer("a", Code.UNAVAILABLE, 5);
    clock.tick();
    clock.ejection.setEndpoints(["b", "c"]);
    assert.equal(clock.ejection.isEjected("a"), false);
    clock.ejection.setEndpoints(["a", "b", "c"]);
    assert.equal(clock.ejection.isEjected("a"), false);
    clock.answer("unknown", Code.UNAVAILABLE, 5);
    assert.deepEqual(clock.tick().ejected, []);
  });

  it("settings: defaults as documented, and a bad value is refused once, by name", () => {
    assert.deepEqual(ejectionSettings(), {
      intervalMs: 1_000,
      baseEjectionTimeMs: 5_000,
      maxEjectionTimeMs: 30_000,
      failurePercentage: 50,
      requestVolume: 5,
      maxEjectionPercent: 50,
    });
    assert.throws(() => ejectionSettings({ intervalMs: 0 }), /intervalMs must be a positive number/);
    assert.throws(() => ejectionSettings({ failurePercentage: 101 }), /failurePercentage must be a percentage/);
    assert.throws(() => ejectionSettings({ requestVolume: 0.5 }), /requestVolume must be a whole number/);
    assert.throws(() => ejectionSettings({ maxEjectionPercent: -1 }), /maxEjectionPercent/);
    assert.throws(() => ejectionSettings({ baseEjectionTimeMs: Number.NaN }), /baseEjectionTimeMs/);
  });
});
