import type { BenchMethod } from "./fixtures.js";
import type { Cell, CellMedians } from "./results.js";

/** One of the targets, as this run measured it. */
export interface TargetResult {
  readonly target: string;
  readonly config: string;
  /** What was measured, e.g. "0.62× bare". */
  readonly measured: string;
  readonly status: "met" | "missed" | "not measured";
  readonly note?: string;
}

const LOADED = "c4m32";
const ONE = "c1m1";

/** Checks the targets against this run's medians (only what the configurations measured). */
export function evaluateTargets(cells: readonly Cell[], configs: readonly string[]): TargetResult[] {
  const medians = (config: string, method: BenchMethod, shape: string): CellMedians | undefined =>
    cells.find((c) => c.config === config && c.method === method && c.shape === shape)?.medians;
  const cell = (config: string, method: BenchMethod, shape: string): Cell | undefined =>
    cells.find((c) => c.config === config && c.method === method && c.shape === shape);
  const verdict = (ok: boolean): TargetResult["status"] => (ok ? "met" : "missed");
  const results: TargetResult[] = [];
  const switchyards = configs.filter((c) => c.startsWith("switchyard-"));
  const singles = switchyards.filter((c) => !c.includes("split"));
  const splits = switchyards.filter((c) => c.includes("split"));

  const sqliteGetUser = cell("switchyard-sqlite", "GetUser", LOADED)?.vsBare?.requestsPerSecond;
  results.push({
    target: "GetUser, in-memory data path ≥ 0.85× bare node:http2 (128 streams)",
    config: "switchyard-sqlite",
    measured: sqliteGetUser === undefined ? "—" : `${fmt(sqliteGetUser)}× bare (SQLite, the closest that exists)`,
    status: "not measured",
    note: "Switchyard has no in-memory store yet; the SQLite figure is shown for reference (an in-memory path should do at least as well).",
  });
  for (const config of singles) {
    const orders = medians(config, "GetOrderByUser", LOADED);
    const users = medians(config, "GetUser", LOADED);
    if (!orders || !users) continue;
    const ratio = orders.requestsPerSecond / users.requestsPerSecond;
    results.push({
      target: "GetOrderByUser, one process ≥ 0.8× our own GetUser (128 streams)",
      config,
      measured: `${fmt(ratio)}× GetUser`,
      status: verdict(ratio >= 0.8),
    });
  }
  for (const config of splits) {
    const ratio = cell(config, "GetOrderByUser", LOADED)?.vsNaive?.requestsPerSecond;
    if (ratio === undefined) continue;
    results.push({
      target: "GetOrderByUser, separate processes ≥ 3× the naive port (128 streams)",
      config,
      measured: `${fmt(ratio)}× naive`,
      status: verdict(ratio >= 3),
    });
  }
  results.push({
    target: "SQLite GetUser ≥ 0.8× the in-memory rate",
    config: "switchyard-sqlite",
    measured: "—",
    status: "not measured",
    note: "needs the in-memory data path",
  });
  for (const config of switchyards) {
    const ratio = cell(config, "GetUser", ONE)?.vsBare?.p50;
    if (ratio === undefined) continue;
    results.push({
      target: "GetUser p50 at one stream ≤ 1.2× bare",
      config,
      measured: `${fmt(ratio)}× bare`,
      status: verdict(ratio <= 1.2),
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
      status: verdict(worst.mib <= 100),
    });
  }
  results.push({
    target: "both cores ≥ 1.7× the one-core figure",
    config: "—",
    measured: "—",
    status: "not measured",
    note: "no multi-core mode exists yet; this benchmark pins every server to one core",
  });
  return results;
}

function fmt(value: number): string {
  return value.toFixed(2);
}
