import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CappedCalls } from "../../src/toolkit/server/deadline-cap.js";

describe("CappedCalls", () => {
  it("ends a call between its deadline and one sweep later, and never a call that answered first", async () => {
    const cap = new CappedCalls(100); // sweeps every 5 ms
    const ended: string[] = [];
    const started = Date.now();
    const late = { expired: () => ended.push(`late after ${Date.now() - started} ms`) };
    const answered = { expired: () => ended.push("answered") };
    cap.add(late, started + 100);
    cap.delete(cap.add(answered, started + 100));
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(ended, [], "nothing ends before its deadline");
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(ended.length, 1, ended.join(", "));
    const afterMs = Number(/after (\d+) ms/.exec(ended[0] ?? "")?.[1]);
    assert.ok(afterMs >= 100 && afterMs < 150, ended[0]);
  });

  it("ends the calls still in, in the order they came, whichever were taken out before, and takes out a swept call twice harmlessly", async () => {
    const cap = new CappedCalls(100);
    const ended: string[] = [];
    const deadline = Date.now() + 20;
    const entries = ["a", "b", "c", "d", "e"].map((name) => {
      const call = {
        expired: () => {
          ended.push(name);
          // A call that ends answers, and its answer takes it out again.
          cap.delete(entry);
        },
      };
      const entry = cap.add(call, deadline);
      return entry;
    });
    const [a, b, , , e] = entries;
    if (a === undefined || b === undefined || e === undefined) throw new Error("five entries");
    cap.delete(a); // the first
    cap.delete(e); // the last
    cap.delete(a); // again: nothing
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(ended, ["b", "c", "d"]);
    const late = { expired: () => ended.push("late") };
    cap.add(late, Date.now() + 10);
    cap.delete(b); // swept already: nothing
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(ended, ["b", "c", "d", "late"], "the list still works after the sweeps emptied it");
  });
});
