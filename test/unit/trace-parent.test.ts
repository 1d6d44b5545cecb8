import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTraceParent } from "../../src/toolkit/rpc/trace-parent.js";
import { newSpanId, newTraceId, unsampledTraceParent } from "../../src/toolkit/telemetry/trace-ids.js";

describe("trace parents", () => {
  it("parse a W3C traceparent and its sampled flag", () => {
    assert.deepEqual(parseTraceParent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      sampled: true,
    });
    assert.equal(parseTraceParent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")?.sampled, false);
  });

  it("read a later version as version 00, as W3C asks", () => {
    assert.equal(parseTraceParent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more")?.sampled, true);
    assert.equal(parseTraceParent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), undefined);
  });

  it("reject what would not continue a trace: malformed, all-zero ids, other versions, non-strings", () => {
    for (const bad of ["", "00-zz-not-a-trace", `00-${"0".repeat(32)}-b7ad6b7169203331-01`, `00-0af7651916cd43dd8448eb211c80319c-${"0".repeat(16)}-01`, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", undefined, new Uint8Array(2)]) {
      assert.equal(parseTraceParent(bad), undefined, String(bad));
    }
  });

  it("make fresh ids of the right shape, and an unsampled traceparent that parses back", () => {
    const traceId = newTraceId();
    assert.match(traceId, /^[0-9a-f]{32}$/);
    assert.match(newSpanId(), /^[0-9a-f]{16}$/);
    assert.notEqual(newSpanId(), newSpanId());
    const parsed = parseTraceParent(unsampledTraceParent(traceId));
    assert.equal(parsed?.traceId, traceId);
    assert.equal(parsed?.sampled, false);
  });
});
