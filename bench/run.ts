/**
 * `npm run bench`: starts each configuration pinned to the server core,
 * checks its answers, drives it with h2load from the other core, and reports
 * medians and ratios against the two baselines measured in the same run.
 * See docs/benchmarks.md.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compiledRuntime, tsxRuntime } from "./build.js";
import { renderChart } from "./chart.js";
import { METHOD_SPECS } from "./fixtures.js";
import { grpcFrame } from "./grpc-frame.js";
import { h2loadVersion } from "./h2load.js";
import { measure } from "./measure.js";
import { parseBenchOptions, type BenchOptions } from "./options.js";
import { type BenchSchema, resetSchema } from "./postgres-schema.js";
import { formatTables, formatTargets } from "./report.js";
import { type Cell, summarize } from "./results.js";
import type { RunningSystem, SystemConfig } from "./systems.js";
import { evaluateTargets } from "./targets.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BARE = "bare-http2";
const NAIVE = "naive-grpc-js";
const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(process.argv.slice(2), process.env);
  } catch (error) {
    log(error instanceof Error ? error.message : String(error));
    process.exitCode = 2;
    return;
  }
  // Keep this script (and its check clients) off the server core.
  execFileSync("taskset", ["-a", "-c", "-p", options.loadCpu, String(process.pid)], { stdio: "ignore" });

  const work = path.join(REPO, ".bench-tmp", `run-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const bodies = new Map(options.methods.map((m) => [m, grpcFrame(METHOD_SPECS[m].request)]));
  for (const [method, body] of bodies) writeFileSync(path.join(work, `${method}.bin`), body);

  log(options.tsx ? "running servers through tsx" : "compiling servers (tsc -p bench/tsconfig.build.json)…");
  const runtime = options.tsx ? tsxRuntime() : compiledRuntime(REPO, log);

  let configs = options.configs;
  let schema: BenchSchema | undefined;
  if (configs.some((c) => c.needsPostgres)) {
    try {
      schema = await resetSchema(options.databaseUrl, "switchyard_bench");
    } catch (error) {
      log(`warning: PostgreSQL unreachable (${error instanceof Error ? error.message : String(error)}); skipping its configurations`);
      configs = configs.filter((c) => !c.needsPostgres);
    }
  }

  const loadAverageBefore = os.loadavg();
  const startedAt = new Date();
  const systems = new Map<string, RunningSystem>();
  const cells: Cell[] = [];
  const stopAll = async (): Promise<void> => {
    for (const system of systems.values()) await system.stop().catch(() => undefined);
    systems.clear();
  };
  process.once("SIGINT", () => void stopAll().finally(() => process.exit(130)));
  try {
    for (const config of configs) {
      log(`starting ${config.name}…`);
      const system = await config.start({
        runtime,
        repo: REPO,
        cpu: options.serverCpu,
        loadCpu: options.loadCpu,
        dataDir: path.join(work, config.name),
        ...(schema ? { databaseUrl: schema.url } : {}),
      });
      systems.set(config.name, system);
    }
    const total = options.methods.length * options.shapes.length * options.runs * configs.length;
    let done = 0;
    for (const method of options.methods) {
      for (const shape of options.shapes) {
        const methodCells = configs.map((config): Cell => ({ config: config.name, method, shape: shape.name, samples: [] }));
        cells.push(...methodCells);
        for (let round = 0; round < options.runs; round++) {
          // Rotate the order each round so no configuration always runs first (or right after a heavy one).
          const order = configs.map((_, i) => configs[(i + round) % configs.length] as SystemConfig);
          for (const config of order) {
            const system = systems.get(config.name);
            const cell = methodCells.find((c) => c.config === config.name);
            if (!system || !cell) continue;
            const sample = await measure({
              config,
              system,
              spec: METHOD_SPECS[method],
              body: bodies.get(method) as Buffer,
              bodyFile: path.join(work, `${method}.bin`),
              shape,
              round,
              durationSeconds: options.durationSeconds,
              warmUpSeconds: options.warmUpSeconds,
              logFile: path.join(work, "h2load.log"),
              loadCpu: options.loadCpu,
              serverCore: firstCpu(options.serverCpu),
              loadCore: firstCpu(options.loadCpu),
            });
            cell.samples.push(sample);
            done++;
            const bad = sample.failed + sample.errored + sample.non2xx;
            log(
              `[${done}/${total}] ${method} ${shape.name} run ${round + 1} ${config.name}: ` +
                `${sample.requestsPerSecond.toFixed(0)} req/s, p50 ${sample.p50Ms.toFixed(2)} ms, p99 ${sample.p99Ms.toFixed(2)} ms` +
                `, other load on the server core ${sample.otherLoadOnServerCorePercent.toFixed(0)}%` +
                (bad > 0 ? `, ${bad} FAILED requests` : ""),
            );
          }
        }
      }
    }
  } finally {
    await stopAll();
    await schema?.drop().catch(() => undefined);
  }

  summarize(cells, BARE, NAIVE);
  const targets = evaluateTargets(
    cells,
    configs.map((c) => c.name),
  );
  process.stdout.write(`${formatTables(cells, configs, options.methods, options.shapes)}\n${formatTargets(targets)}\n`);

  const outDir = path.resolve(REPO, options.outDir);
  mkdirSync(outDir, { recursive: true });
  const meta = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    node: process.version,
    h2load: await h2loadVersion(),
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    cpus: os.cpus().length,
    loadAverageBefore,
    loadAverageAfter: os.loadavg(),
    runtime: options.tsx ? "tsx" : "compiled (tsc → .bench-tmp/build)",
    runs: options.runs,
    durationSeconds: options.durationSeconds,
    warmUpSeconds: options.warmUpSeconds,
    serverCpu: options.serverCpu,
    loadCpu: options.loadCpu,
    quick: options.quick,
    notes: [
      "Every server process is pinned to serverCpu; h2load and this script to loadCpu. The split topology's two processes share serverCpu.",
      "CreateOrder: h2load sends one body, so after the first write every request replays the same order_id: the idempotent path (user check plus an INSERT … ON CONFLICT DO NOTHING and a read back), not a stream of new rows.",
      "Latency percentiles come from h2load's per-request log of the measured period; CPU is utime+stime over the same period; peak RSS is VmHWM, reset before each run.",
      "The machine is shared: other work may have been running during the measurement.",
    ],
  };
  const results = {
    meta,
    configs: configs.map((c) => ({ name: c.name, label: c.label, description: c.description })),
    methods: options.methods,
    shapes: options.shapes,
    cells,
    targets,
  };
  const jsonPath = path.join(outDir, "bench-results.json");
  const svgPath = path.join(outDir, "bench-chart.svg");
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  const title = `Switchyard benchmark, ${startedAt.toISOString().slice(0, 10)}: medians of ${options.runs} run(s), server on 1 core`;
  writeFileSync(svgPath, renderChart(cells, configs, options.methods, options.shapes, title));
  rmSync(work, { recursive: true, force: true });
  log(`\nwrote ${path.relative(REPO, jsonPath)} and ${path.relative(REPO, svgPath)}`);
  const failures = cells.flatMap((c) => c.samples).reduce((n, s) => n + s.failed + s.errored + s.non2xx, 0);
  if (failures > 0) {
    log(`${failures} requests failed under load (see the log above)`);
    process.exitCode = 1;
  }
}

/** The first CPU of a taskset list such as "0" or "0-1,3". */
function firstCpu(list: string): number {
  return Number(/^\d+/.exec(list)?.[0] ?? "0");
}

await main();
