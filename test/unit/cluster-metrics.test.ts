import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeExpositions } from "../../src/toolkit/telemetry/cluster-metrics.js";

describe("mergeExpositions", () => {
  it("keeps one HELP and TYPE per family and labels every sample with its worker", () => {
    const text = (calls: number) =>
      [
        "# HELP calls_total Calls.",
        "# TYPE calls_total counter",
        `calls_total{method="Get"} ${calls}`,
        "# HELP latency_seconds Latency.",
        "# TYPE latency_seconds histogram",
        `latency_seconds_bucket{le="+Inf"} ${calls}`,
        `latency_seconds_count ${calls}`,
        "up 1",
      ].join("\n");
    assert.equal(
      mergeExpositions([
        { worker: "1", text: text(2) },
        { worker: "2", text: text(3) },
      ]),
      [
        "# HELP calls_total Calls.",
        "# TYPE calls_total counter",
        'calls_total{worker="1",method="Get"} 2',
        'calls_total{worker="2",method="Get"} 3',
        "# HELP latency_seconds Latency.",
        "# TYPE latency_seconds histogram",
        'latency_seconds_bucket{worker="1",le="+Inf"} 2',
        'latency_seconds_count{worker="1"} 2',
        'latency_seconds_bucket{worker="2",le="+Inf"} 3',
        'latency_seconds_count{worker="2"} 3',
        // A sample without a TYPE line is a family of its own, not the histogram's.
        'up{worker="1"} 1',
        'up{worker="2"} 1',
        "",
      ].join("\n"),
    );
  });
});
