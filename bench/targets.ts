import type { BenchMethod } from "./fixtures.js";
import type { Cell, Ratios } from "./results.js";
import { TELEMETRY_SAMPLE_RATIO, TELEMETRY_SUFFIX, WORKERS_SUFFIX } from "./systems.js";

/** One of the targets, as this run measured it. */
export interface TargetResult {
  readonly target: string;
  readonly config: string;
  /** What was measured, e.g. "0.62× bare (0.55× per CPU-s)". */
  readonly measured: string;
  /**
   * "met"/"missed" when req/s and req per CPU-second agree; "unclear" when
   * they disagree (on a shared machine the server may not have had its core).
   */
  readonly status: "met" | "missed" | "unclear" | "not measured";
  readonly note?: string;
}

const LOADED = "c4m32";
const ONE = "c1m1";

/** Checks the targets against this run's medians (only what the configurations measured). */
export function evaluateTargets(cells: readonly Cell[], configs: readonly string[]): TargetResult[] {
  const cell = (config: string, method: BenchMethod, shape: string): Cell | undefined =>
    cells.find((c) => c.config === config && c.method === method && c.shape === shape);
  const results: TargetResult[] = [];
  // Issue 3's targets are about the plain configurations; their telemetry twins are judged against them below.
  const switchyards = configs.filter((c) => c.startsWith("switchyard-") && !c.endsWith(TELEMETRY_SUFFIX));
  const singles = switchyards.filter((c) => !c.includes("split"));
  const splits = switchyards.filter((c) => c.includes("split"));

  // A throughput target, judged on req/s and on req per CPU-second.
  const throughput = (target: string, config: string, ratios: Ratios | undefined, against: string, atLeast: number): void => {
    if (ratios === undefined) return;
    const raw = ratios.requestsPerSecond >= atLeast;
    const perCpu = ratios.requestsPerCpuSecond >= atLeast;
    results.push({
      target,
      config,
      measured: `${fmt(ratios.requestsPerSecond)}× ${against} (${fmt(ratios.requestsPerCpuSecond)}× per CPU-s)`,
      status: raw && perCpu ? "met" : !raw && !perCpu ? "missed" : "unclear",
    });
  };

  for (const config of singles.filter((c) => c.startsWith("switchyard-memory"))) {
    throughput("GetUser, in-memory data path ≥ 0.85× bare node:http2 (128 streams)", config, cell(config, "GetUser", LOADED)?.vsBare, "bare", 0.85);
  }
  for (const config of singles) {
    const orders = cell(config, "GetOrderByUser", LOADED)?.medians;
    const users = cell(config, "GetUser", LOADED)?.medians;
    if (!orders || !users) continue;
    throughput(
      "GetOrderByUser, one process ≥ 0.8× our own GetUser (128 streams)",
      config,
      ratiosOf(orders, users),
      "GetUser",
      0.8,
    );
  }
  for (const config of splits) {
    throughput(
      "GetOrderByUser, separate processes ≥ 3× the naive port (128 streams)",
      config,
      cell(config, "GetOrderByUser", LOADED)?.vsNaive,
      "naive",
      3,
    );
  }
  // Each SQLite configuration against the in-memory one on the same engine.
  for (const config of singles.filter((c) => c.startsWith("switchyard-sqlite") && !c.endsWith(WORKERS_SUFFIX))) {
    const sqlite = cell(config, "GetUser", LOADED)?.medians;
    const memory = cell(config.replace("switchyard-sqlite", "switchyard-memory"), "GetUser", LOADED)?.medians;
    if (!sqlite || !memory) continue;
    throughput("SQLite GetUser ≥ 0.8× the in-memory rate (128 streams)", config, ratiosOf(sqlite, memory), "in-memory", 0.8);
  }
  for (const config of switchyards) {
    const ratio = cell(config, "GetUser", ONE)?.vsBare?.p50;
    if (ratio === undefined) continue;
    results.push({
      target: "GetUser p50 at one stream ≤ 1.2× bare",
      config,
      measured: `${fmt(ratio)}× bare`,
      status: ratio <= 1.2 ? "met" : "missed",
    });
  }
  for (const config of switchyards) {
    const peaks = cells
      .filter((c) => c.config === config && c.shape === LOADED && c.medians)
      .flatMap((c) => Object.entries(c.medians?.peakRssMiB ?? {}).map(([role, mib]) => ({ role, mib, method: c.method })));
    if (peaks.length === 0) continue;
    const worst = peaks.reduce((a, b) => (b.mib > a.mib ? b : a));
    results.push({
      target: "peak RSS ≤ 100 MB per process (128 streams)",
      config,
      measured: `${worst.mib.toFixed(0)} MiB (${worst.role}, ${worst.method})`,
      status: worst.mib <= 100 ? "met" : "missed",
    });
  }
  // Both cores against one: h2load shares the second core, so the rate the
  // workers would reach with both cores to themselves is 2 × their req/CPU-s.
  for (const config of configs.filter((c) => c.endsWith(WORKERS_SUFFIX))) {
    const both = cell(config, "GetUser", LOADED)?.medians;
    const one = cell(config.slice(0, -WORKERS_SUFFIX.length), "GetUser", LOADED)?.medians;
    if (!both || !one) continue;
    const projected = (2 * both.requestsPerCpuSecond) / one.requestsPerCpuSecond;
    results.push({
      target: "both cores ≥ 1.7× the one-core figure (GetUser, 128 streams)",
      config,
      measured: `${fmt(projected)}× one core with the load generator's share taken out (${fmt(both.requestsPerSecond / one.requestsPerSecond)}× measured req/s, h2load on one of the two cores)`,
      status: projected >= 1.7 ? "met" : "missed",
    });
  }

  // Issue 6: tracing + metrics on, against the same configuration without them, measured in this run.
  const methods = [...new Set(cells.map((c) => c.method))];
  for (const config of configs.filter((c) => c.endsWith(TELEMETRY_SUFFIX))) {
    const plain = config.slice(0, -TELEMETRY_SUFFIX.length);
    for (const method of methods) {
      const on = cell(config, method, LOADED)?.medians;
      const off = cell(plain, method, LOADED)?.medians;
      if (!on || !off) continue;
      throughput(
        `issue 6: ${method} with tracing (${TELEMETRY_SAMPLE_RATIO * 100} % sampled) + metrics ≥ 0.9× without (128 streams)`,
        config,
        ratiosOf(on, off),
        plain,
        0.9,
      );
    }
  }
  return results;
}

/** The ratios of two cells' medians. */
function ratiosOf(a: NonNullable<Cell["medians"]>, b: NonNullable<Cell["medians"]>): Ratios {
  return {
    requestsPerSecond: a.requestsPerSecond / b.requestsPerSecond,
    requestsPerCpuSecond: a.requestsPerCpuSecond / b.requestsPerCpuSecond,
    p50: a.p50Ms / b.p50Ms,
    p99: a.p99Ms / b.p99Ms,
  };
}

function fmt(value: number): string {
  return value.toFixed(2);
}
