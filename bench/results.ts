import type { BenchMethod } from "./fixtures.js";
import { median } from "./stats.js";

/** One measured h2load run against one configuration. */
export interface RunSample {
  readonly round: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
  /** Per server process (role → %), over the measured period; 100 = one core busy. */
  readonly cpuPercent: Readonly<Record<string, number>>;
  /** Per server process (role → MiB): VmHWM, reset before the run. */
  readonly peakRssMiB: Readonly<Record<string, number>>;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly non2xx: number;
  /** How busy the server core was, machine-wide, over the measured period (100 = saturated). */
  readonly serverCoreBusyPercent: number;
  /** The part of that not spent in our server processes: other programs on a shared machine (noise). */
  readonly otherLoadOnServerCorePercent: number;
  /** How busy the load core was (h2load plus anything else): near 100, the load generator may be the limit. */
  readonly loadCoreBusyPercent: number;
}

/** The medians of a cell's runs. */
export interface CellMedians {
  readonly requestsPerSecond: number;
  /**
   * Requests per second of server CPU (all the configuration's processes):
   * what req/s would be on a core of its own. Steadier than req/s on a shared
   * machine, where the server gets only part of its core. PostgreSQL's own
   * CPU is not included.
   */
  readonly requestsPerCpuSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuPercent: Readonly<Record<string, number>>;
  /** Sum over the configuration's processes. */
  readonly cpuPercentTotal: number;
  readonly peakRssMiB: Readonly<Record<string, number>>;
  readonly otherLoadOnServerCorePercent: number;
  readonly loadCoreBusyPercent: number;
}

/** Ratios of one cell's medians to a baseline's medians for the same method and shape. */
export interface Ratios {
  /** > 1 is faster than the baseline. */
  readonly requestsPerSecond: number;
  /** > 1 does more per CPU-second than the baseline. */
  readonly requestsPerCpuSecond: number;
  /** < 1 is quicker than the baseline. */
  readonly p50: number;
  readonly p99: number;
}

/** One configuration × method × load shape. */
export interface Cell {
  readonly config: string;
  readonly method: BenchMethod;
  readonly shape: string;
  readonly samples: RunSample[];
  medians?: CellMedians;
  vsBare?: Ratios;
  vsNaive?: Ratios;
}

/** The medians of the samples, per figure (and per process for CPU and RSS). */
export function mediansOf(samples: readonly RunSample[]): CellMedians {
  const roles = [...new Set(samples.flatMap((s) => Object.keys(s.cpuPercent)))];
  const perRole = (pick: (s: RunSample) => Readonly<Record<string, number>>): Record<string, number> =>
    Object.fromEntries(roles.map((role) => [role, median(samples.map((s) => pick(s)[role] ?? Number.NaN))]));
  return {
    requestsPerSecond: median(samples.map((s) => s.requestsPerSecond)),
    requestsPerCpuSecond: median(samples.map((s) => s.requestsPerSecond / (totalCpu(s) / 100))),
    p50Ms: median(samples.map((s) => s.p50Ms)),
    p99Ms: median(samples.map((s) => s.p99Ms)),
    cpuPercent: perRole((s) => s.cpuPercent),
    cpuPercentTotal: median(samples.map(totalCpu)),
    peakRssMiB: perRole((s) => s.peakRssMiB),
    otherLoadOnServerCorePercent: median(samples.map((s) => s.otherLoadOnServerCorePercent)),
    loadCoreBusyPercent: median(samples.map((s) => s.loadCoreBusyPercent)),
  };
}

function totalCpu(sample: RunSample): number {
  return Object.values(sample.cpuPercent).reduce((a, b) => a + b, 0);
}

/** This cell's medians relative to a baseline's. */
export function ratiosOf(cell: CellMedians, baseline: CellMedians): Ratios {
  return {
    requestsPerSecond: cell.requestsPerSecond / baseline.requestsPerSecond,
    requestsPerCpuSecond: cell.requestsPerCpuSecond / baseline.requestsPerCpuSecond,
    p50: cell.p50Ms / baseline.p50Ms,
    p99: cell.p99Ms / baseline.p99Ms,
  };
}

/** Fills in medians and ratios against the two baselines measured in the same run. */
export function summarize(cells: readonly Cell[], bare: string, naive: string): void {
  for (const cell of cells) cell.medians = mediansOf(cell.samples);
  for (const cell of cells) {
    const find = (config: string): CellMedians | undefined =>
      cells.find((c) => c.config === config && c.method === cell.method && c.shape === cell.shape)?.medians;
    const bareMedians = find(bare);
    const naiveMedians = find(naive);
    if (cell.medians && bareMedians) cell.vsBare = ratiosOf(cell.medians, bareMedians);
    if (cell.medians && naiveMedians) cell.vsNaive = ratiosOf(cell.medians, naiveMedians);
  }
}
