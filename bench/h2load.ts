import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { percentileOfSorted } from "./stats.js";

/** A load shape: h2load's -c (connections) and -m (streams per connection). */
export interface LoadShape {
  readonly name: string;
  readonly label: string;
  readonly connections: number;
  readonly streamsPerConnection: number;
}

/** One stream, and 128 streams over 4 connections (the two shapes). */
export const LOAD_SHAPES: readonly LoadShape[] = [
  { name: "c1m1", label: "1 stream (-c1 -m1)", connections: 1, streamsPerConnection: 1 },
  { name: "c4m32", label: "128 streams (-c4 -m32)", connections: 4, streamsPerConnection: 32 },
];

/** Options for runH2load. */
export interface H2loadOptions {
  /** e.g. `http://127.0.0.1:50051/service.UserService/GetUser` (h2c with prior knowledge). */
  readonly url: string;
  /** A file holding the gRPC-framed request body, sent with every request. */
  readonly bodyFile: string;
  readonly shape: LoadShape;
  /** Measured seconds (-D). */
  readonly durationSeconds: number;
  /** Seconds of load before measuring starts (--warm-up-time). */
  readonly warmUpSeconds: number;
  /** Send exactly this many requests (-n) instead of loading for a duration: durationSeconds and warmUpSeconds are then ignored. */
  readonly requests?: number;
  /** Where h2load writes one line per measured request; percentiles come from it. */
  readonly logFile: string;
  /** CPU list for `taskset -c`, e.g. "1". */
  readonly cpu: string;
  /** Called once h2load has started, with its wall-clock start (performance.now()). */
  readonly onStart?: (startedAt: number) => void;
}

/** What one h2load run reports, plus latency percentiles from its per-request log. */
export interface H2loadResult {
  readonly requestsPerSecond: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timedOut: number;
  /** Responses with a 2xx :status. Says nothing of grpc-status: see the checks. */
  readonly status2xx: number;
  readonly statusNon2xx: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Requests in the per-request log (the measured period only). */
  readonly logged: number;
}

/** Runs h2load pinned with taskset, with gRPC headers, and parses what it prints and logs. */
export async function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const args = [
    "-c",
    options.cpu,
    "h2load",
    `-c${options.shape.connections}`,
    `-m${options.shape.streamsPerConnection}`,
    "-t1",
    ...(options.requests === undefined
      ? ["-D", String(options.durationSeconds), "--warm-up-time", String(options.warmUpSeconds)]
      : ["-n", String(options.requests)]),
    "-d",
    options.bodyFile,
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    `--log-file=${options.logFile}`,
    options.url,
  ];
  const stdout = await run("taskset", args, options.onStart);
  const summary = parseSummary(stdout);
  const latencies = await readLatenciesMs(options.logFile);
  return {
    ...summary,
    p50Ms: percentileOfSorted(latencies, 50),
    p90Ms: percentileOfSorted(latencies, 90),
    p99Ms: percentileOfSorted(latencies, 99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    meanMs: latencies.length === 0 ? Number.NaN : latencies.reduce((sum, v) => sum + v, 0) / latencies.length,
    logged: latencies.length,
  };
}

/** The installed h2load's version line, for the result file. */
export async function h2loadVersion(): Promise<string> {
  return (await run("h2load", ["--version"])).trim();
}

type Summary = Omit<H2loadResult, "p50Ms" | "p90Ms" | "p99Ms" | "maxMs" | "meanMs" | "logged">;

/** Parses h2load's closing summary (nghttp2 1.5x format). */
export function parseSummary(stdout: string): Summary {
  const finished = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout);
  const requests =
    /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  if (!finished || !requests || !status) throw new Error(`could not parse h2load's output:\n${stdout}`);
  const n = (match: RegExpExecArray, i: number): number => Number(match[i]);
  return {
    requestsPerSecond: n(finished, 1),
    succeeded: n(requests, 1),
    failed: n(requests, 2),
    errored: n(requests, 3),
    timedOut: n(requests, 4),
    status2xx: n(status, 1),
    statusNon2xx: n(status, 2) + n(status, 3) + n(status, 4),
  };
}

// Columns: start (µs since the epoch), status, µs until the end of the response.
async function readLatenciesMs(logFile: string): Promise<number[]> {
  const text = await readFile(logFile, "utf8");
  const latencies: number[] = [];
  for (const line of text.split("\n")) {
    const micros = Number(line.split("\t")[2]);
    if (line !== "" && Number.isFinite(micros)) latencies.push(micros / 1000);
  }
  return latencies.sort((a, b) => a - b);
}

function run(command: string, args: readonly string[], onStart?: (startedAt: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    onStart?.(performance.now());
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${stderr}${stdout}`)),
    );
  });
}
