import type { MethodSpec } from "./fixtures.js";
import { checkFrameFile } from "./frame-check.js";
import { type LoadShape, runH2load } from "./h2load.js";
import { coreTimes, type CoreTimes, cpuSeconds, memoryMiB, resetPeakRss } from "./process-stats.js";
import { rmSync } from "node:fs";
import type { RunSample } from "./results.js";
import type { RunningSystem, SystemConfig } from "./systems.js";

/** One measurement: which system, method, shape and round, and where to put h2load's files. */
export interface MeasureOptions {
  readonly config: SystemConfig;
  readonly system: RunningSystem;
  readonly spec: MethodSpec;
  /** The gRPC-framed request, as written to `bodyFile`. */
  readonly body: Buffer;
  readonly bodyFile: string;
  readonly shape: LoadShape;
  readonly round: number;
  readonly durationSeconds: number;
  readonly warmUpSeconds: number;
  readonly logFile: string;
  /** CPU list h2load is pinned to. */
  readonly loadCpu: string;
  /** The CPU the servers are pinned to, to tell how busy other programs kept it. */
  readonly serverCore: number;
  readonly loadCore: number;
}

/**
 * Checks correctness (on the first round, the h2load body over raw HTTP/2;
 * every round, a few calls through a real grpc-js client: grpc-status 0 and
 * the expected message),
 * drives the load, reads the servers' CPU time over the measured period and
 * their peak RSS, and checks correctness once more afterwards.
 */
export async function measure(options: MeasureOptions): Promise<RunSample> {
  const { config, system, spec } = options;
  const port = system.portFor(spec.service);
  const expected = config.expected[spec.method];
  const client = system.clientFor(spec.service);
  // The body file never changes: its bytes are checked on the first round.
  if (options.round === 0) await checkFrameFile(port, spec, options.body, expected);
  await client.check(spec, expected, 3);

  for (const process of system.processes) resetPeakRss(process.pid);
  type Snapshot = { at: number; cpu: number[]; serverCore: CoreTimes; loadCore: CoreTimes };
  const snapshot = (): Snapshot => ({
    at: performance.now(),
    cpu: system.processes.map((p) => cpuSeconds(p.pid)),
    serverCore: coreTimes(options.serverCore),
    loadCore: coreTimes(options.loadCore),
  });
  // h2load appends to its log file: start each run from an empty one.
  rmSync(options.logFile, { force: true });
  let measuredFrom: Snapshot | undefined;
  let timer: NodeJS.Timeout | undefined;
  const result = await runH2load({
    url: `http://127.0.0.1:${port}${spec.path}`,
    bodyFile: options.bodyFile,
    shape: options.shape,
    durationSeconds: options.durationSeconds,
    warmUpSeconds: options.warmUpSeconds,
    logFile: options.logFile,
    cpu: options.loadCpu,
    // h2load measures after its warm-up; so does the CPU reading.
    onStart: () => (timer = setTimeout(() => (measuredFrom = snapshot()), options.warmUpSeconds * 1000)),
  });
  clearTimeout(timer);
  const measuredTo = snapshot();
  const from = measuredFrom ?? measuredTo;
  const seconds = (measuredTo.at - from.at) / 1000;

  const cpuPercent: Record<string, number> = {};
  const peakRssMiB: Record<string, number> = {};
  system.processes.forEach((process, i) => {
    cpuPercent[process.role] = seconds > 0 ? (((measuredTo.cpu[i] ?? 0) - (from.cpu[i] ?? 0)) / seconds) * 100 : Number.NaN;
    peakRssMiB[process.role] = memoryMiB(process.pid, "VmHWM");
  });

  const busy = (a: CoreTimes, b: CoreTimes): number => (b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * 100 : Number.NaN);
  const serverCoreBusy = busy(from.serverCore, measuredTo.serverCore);
  const ours = Object.values(cpuPercent).reduce((a, b) => a + b, 0);

  await client.check(spec, expected, 1);
  return {
    round: options.round,
    requestsPerSecond: result.requestsPerSecond,
    p50Ms: result.p50Ms,
    p90Ms: result.p90Ms,
    p99Ms: result.p99Ms,
    meanMs: result.meanMs,
    maxMs: result.maxMs,
    cpuPercent,
    peakRssMiB,
    succeeded: result.succeeded,
    failed: result.failed,
    errored: result.errored,
    non2xx: result.statusNon2xx,
    serverCoreBusyPercent: serverCoreBusy,
    otherLoadOnServerCorePercent: Math.max(0, serverCoreBusy - ours),
    loadCoreBusyPercent: busy(from.loadCore, measuredTo.loadCore),
  };
}
