import type { BenchMethod } from "./fixtures.js";
import type { LoadShape } from "./h2load.js";
import type { Cell } from "./results.js";
import type { SystemConfig } from "./systems.js";
import type { TargetResult } from "./targets.js";

/** Plain-text tables, one per method and load shape: the medians and the ratios to both baselines. */
export function formatTables(
  cells: readonly Cell[],
  configs: readonly SystemConfig[],
  methods: readonly BenchMethod[],
  shapes: readonly LoadShape[],
): string {
  const out: string[] = [];
  const header = [
    "configuration",
    "req/s",
    "×bare",
    "×naive",
    "req/CPU-s",
    "×bare",
    "×naive",
    "p50 ms",
    "×bare",
    "p99 ms",
    "×bare",
    "CPU %",
    "peak RSS MiB",
    "other load %",
  ];
  for (const method of methods) {
    for (const shape of shapes) {
      const rows: string[][] = [header];
      for (const config of configs) {
        const cell = cells.find((c) => c.config === config.name && c.method === method && c.shape === shape.name);
        const m = cell?.medians;
        if (!cell || !m) continue;
        const roles = Object.keys(m.cpuPercent);
        const perRole = (values: Readonly<Record<string, number>>, digits: number): string =>
          roles.length === 1 ? num(values[roles[0] ?? ""], digits) : roles.map((r) => `${r} ${num(values[r], digits)}`).join(" + ");
        rows.push([
          config.label,
          num(m.requestsPerSecond, 0),
          num(cell.vsBare?.requestsPerSecond, 2),
          num(cell.vsNaive?.requestsPerSecond, 2),
          num(m.requestsPerCpuSecond, 0),
          num(cell.vsBare?.requestsPerCpuSecond, 2),
          num(cell.vsNaive?.requestsPerCpuSecond, 2),
          num(m.p50Ms, 2),
          num(cell.vsBare?.p50, 2),
          num(m.p99Ms, 2),
          num(cell.vsBare?.p99, 2),
          perRole(m.cpuPercent, 0),
          perRole(m.peakRssMiB, 0),
          num(m.otherLoadOnServerCorePercent, 0),
        ]);
      }
      out.push(`\n${method} — ${shape.label} (medians of ${cells[0]?.samples.length ?? 0} runs)`);
      out.push(align(rows));
    }
  }
  out.push(
    [
      "",
      "req/CPU-s: requests per second of server CPU (req/s ÷ CPU share): the rate on a core of its own; PostgreSQL's CPU not included.",
      "CPU %: server process(es), 100 = one core. Other load %: time the server core spent on programs other than",
      "the servers under test (noise on a shared machine). ×bare, ×naive: ratio to that baseline's median, same method and shape.",
    ].join("\n"),
  );
  return out.join("\n");
}

/** The targets as a table. */
export function formatTargets(targets: readonly TargetResult[]): string {
  const rows = [["target", "configuration", "measured", "status"], ...targets.map((t) => [t.target, t.config, t.measured, t.status])];
  return `\nIssue 3 targets\n${align(rows, rows[0]?.length ?? 0)}`;
}

function num(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? "—" : value.toFixed(digits);
}

/** Columns padded to their widest value; the first `leftColumns` left-aligned, the rest right-aligned (numbers). */
function align(rows: readonly string[][], leftColumns = 1): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((row) => row.map((value, i) => (i < leftColumns ? value.padEnd(widths[i] ?? 0) : value.padStart(widths[i] ?? 0))).join("  "))
    .join("\n");
}
