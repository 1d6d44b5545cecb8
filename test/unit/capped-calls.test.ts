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
    cap.add(answered, started + 100);
    cap.delete(answered);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(ended, [], "nothing ends before its deadline");
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(ended.length, 1, ended.join(", "));
    const afterMs = Number(/after (\d+) ms/.exec(ended[0] ?? "")?.[1]);
    assert.ok(afterMs >= 100 && afterMs < 150, ended[0]);
  });
});
