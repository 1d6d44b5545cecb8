import { parseArgs } from "node:util";
import { BENCH_METHODS, type BenchMethod } from "./fixtures.js";
import { LOAD_SHAPES, type LoadShape } from "./h2load.js";
import { DEFAULT_CONFIGS, SYSTEM_CONFIGS, type SystemConfig } from "./systems.js";

/** What `npm run bench -- …` asked for, validated. */
export interface BenchOptions {
  readonly quick: boolean;
  readonly runs: number;
  readonly durationSeconds: number;
  readonly warmUpSeconds: number;
  readonly configs: readonly SystemConfig[];
  readonly methods: readonly BenchMethod[];
  readonly shapes: readonly LoadShape[];
  /** Where bench-results.json and bench-chart.svg go. */
  readonly outDir: string;
  /** Run the TypeScript sources through tsx instead of compiling them first. */
  readonly tsx: boolean;
  readonly databaseUrl: string;
  readonly serverCpu: string;
  readonly loadCpu: string;
}

export const USAGE = `npm run bench -- [options]
  --quick               1 run of 1 s after 1 s of warm-up (smoke test); writes to .bench-tmp/quick unless --out
  --runs N              runs per cell, medians reported (default 3)
  --duration S          measured seconds per run, h2load -D (default 3)
  --warm-up S           seconds of load before measuring, h2load --warm-up-time (default 1)
  --configs a,b         from: ${SYSTEM_CONFIGS.map((c) => c.name).join(", ")}
                        (default: ${DEFAULT_CONFIGS.join(", ")})
  --methods a,b         from: ${BENCH_METHODS.join(", ")} (default: all)
  --shapes a,b          from: ${LOAD_SHAPES.map((s) => s.name).join(", ")} (default: all)
  --out DIR             where to write bench-results.json and bench-chart.svg (default docs)
  --tsx                 run servers through tsx instead of compiled JS
  --database-url URL    PostgreSQL for the postgres configurations
                        (default $SWITCHYARD_BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/test)
  --server-cpu LIST     taskset CPU list for the servers (default 0)
  --load-cpu LIST       taskset CPU list for h2load and this script (default 1)`;

/** Parses argv; throws with a message fit for a person on anything unknown or malformed. */
export function parseBenchOptions(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      duration: { type: "string" },
      "warm-up": { type: "string" },
      configs: { type: "string" },
      methods: { type: "string" },
      shapes: { type: "string" },
      out: { type: "string" },
      tsx: { type: "boolean", default: false },
      "database-url": { type: "string" },
      "server-cpu": { type: "string", default: "0" },
      "load-cpu": { type: "string", default: "1" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) throw new Error(USAGE);
  const quick = values.quick ?? false;
  const positive = (name: string, value: string | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} expects a positive whole number, got "${value}"`);
    return n;
  };
  const configs = pick("configs", values.configs, SYSTEM_CONFIGS, (c) => c.name, SYSTEM_CONFIGS.filter((c) => DEFAULT_CONFIGS.includes(c.name)));
  return {
    quick,
    runs: positive("runs", values.runs, quick ? 1 : 3),
    durationSeconds: positive("duration", values.duration, quick ? 1 : 3),
    warmUpSeconds: positive("warm-up", values["warm-up"], 1),
    // Always in report order, whatever order they were asked for in.
    configs: SYSTEM_CONFIGS.filter((c) => configs.includes(c)),
    methods: pick("methods", values.methods, BENCH_METHODS, (m) => m, BENCH_METHODS),
    shapes: pick("shapes", values.shapes, LOAD_SHAPES, (s) => s.name, LOAD_SHAPES),
    outDir: values.out ?? (quick ? ".bench-tmp/quick" : "docs"),
    tsx: values.tsx ?? false,
    databaseUrl: values["database-url"] ?? env.SWITCHYARD_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    serverCpu: values["server-cpu"] ?? "0",
    loadCpu: values["load-cpu"] ?? "1",
  };
}

/** The configurations a comma-separated `--configs` names, in the order given. */
export function pickConfigs(value: string): SystemConfig[] {
  return pick("configs", value, SYSTEM_CONFIGS, (c) => c.name, []);
}

/** The methods a comma-separated `--methods` names, in the order given. */
export function pickMethods(value: string): BenchMethod[] {
  return pick("methods", value, BENCH_METHODS, (m) => m, []);
}

function pick<T>(name: string, value: string | undefined, all: readonly T[], key: (t: T) => string, fallback: readonly T[]): T[] {
  if (value === undefined) return [...fallback];
  return value.split(",").map((wanted) => {
    const found = all.find((t) => key(t) === wanted.trim());
    if (found === undefined) throw new Error(`--${name}: unknown "${wanted}"; expected one of ${all.map(key).join(", ")}`);
    return found;
  });
}
