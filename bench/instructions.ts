/**
 * `npm run bench:instructions`: machine instructions each server executes per
 * call under the 128-stream load, counted by valgrind's callgrind. CPU time
 * per call moves by a tenth or more between runs of one build on a shared
 * machine; an instruction count does not move with the machine's load, so
 * a change to the hot path of a few per cent can be judged by it.
 *
 * Each server runs under `valgrind --tool=callgrind` with V8's
 * `--predictable --predictable-gc-schedule` (no helper threads, a GC
 * schedule that does not depend on time): two runs of one build then agree
 * within about 0.5 %, where they differ by 3–7 % without these flags. The
 * counters are zeroed after a warm-up (`callgrind_control -z`) and dumped
 * after the measured calls (`callgrind_control -d`), so start-up and JIT
 * warm-up are left out. What this does not show is the cost of memory: GC
 * on helper threads, cache misses. Read it beside CPU time, not instead.
 *
 * Usage: npm run bench:instructions -- [--configs a,b] [--methods a,b] [--warm-up N] [--calls N]
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { compiledRuntime } from "./build.js";
import { METHOD_SPECS } from "./fixtures.js";
import { grpcFrame } from "./grpc-frame.js";
import { LOAD_SHAPES, runH2load } from "./h2load.js";
import { pickConfigs, pickMethods } from "./options.js";
import type { Runtime } from "./systems.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The bench's 128-stream shape (-c4 -m32). */
const SHAPE = LOAD_SHAPES.find((s) => s.name === "c4m32");
if (SHAPE === undefined) throw new Error("bench/h2load.ts no longer has the c4m32 load shape");

const { values } = parseArgs({
  options: {
    configs: { type: "string", default: "bare-http2,switchyard-memory" },
    methods: { type: "string", default: "GetUser" },
    "warm-up": { type: "string", default: "10000" },
    calls: { type: "string", default: "20000" },
  },
});
const configs = pickConfigs(values.configs);
const methods = pickMethods(values.methods);
const warmUpCalls = Number(values["warm-up"]);
const calls = Number(values.calls);
if (!Number.isInteger(warmUpCalls) || warmUpCalls < 1 || !Number.isInteger(calls) || calls < 1) {
  throw new Error("--warm-up and --calls take a whole number of calls");
}
for (const tool of ["valgrind", "callgrind_control"]) {
  try {
    execFileSync(tool, ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error(`${tool} is missing: apt-get install valgrind`);
  }
}

const work = path.join(REPO, ".bench-tmp", `instructions-${process.pid}`);
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
execFileSync("taskset", ["-a", "-c", "-p", "1", String(process.pid)], { stdio: "ignore" });
const compiled = compiledRuntime(REPO, (line) => process.stderr.write(`${line}\n`));
const runtime: Runtime = {
  nodeArgs: (entry) => ["--predictable", "--predictable-gc-schedule", ...compiled.nodeArgs(entry)],
  // --smc-check=all: V8 writes the code it runs (the JIT).
  launcher: ["valgrind", "--tool=callgrind", "--smc-check=all", `--callgrind-out-file=${path.join(work, "callgrind.%p")}`],
  readyTimeoutMs: 180_000,
};

for (const config of configs) {
  const system = await config.start({ runtime, repo: REPO, cpu: "0", loadCpu: "1", dataDir: path.join(work, config.name) });
  try {
    for (const method of methods) {
      const spec = METHOD_SPECS[method];
      const bodyFile = path.join(work, `${method}.bin`);
      writeFileSync(bodyFile, grpcFrame(spec.request));
      const load = async (requests: number): Promise<void> => {
        const result = await runH2load({
          url: `http://127.0.0.1:${system.portFor(spec.service)}${spec.path}`,
          bodyFile,
          shape: SHAPE,
          durationSeconds: 0,
          warmUpSeconds: 0,
          requests,
          logFile: path.join(work, "h2load.log"),
          cpu: "1",
        });
        if (result.succeeded !== requests) throw new Error(`${config.name} ${method}: ${requests - result.succeeded} of ${requests} requests failed`);
      };
      await load(warmUpCalls);
      for (const server of system.processes) callgrindControl("-z", server.pid);
      await load(calls);
      for (const server of system.processes) {
        callgrindControl("-d", server.pid);
        const count = lastDumpTotal(server.pid);
        process.stdout.write(`${config.name} ${server.role} ${method}: ${Math.round(count / calls)} instructions per call over ${calls} calls\n`);
      }
    }
  } finally {
    await system.stop();
  }
}
rmSync(work, { recursive: true, force: true });

function callgrindControl(flag: "-z" | "-d", pid: number): void {
  execFileSync("callgrind_control", [flag, String(pid)], { stdio: "ignore" });
}

/** The instruction total of the newest dump callgrind wrote for `pid` (callgrind.<pid>.<n>). */
function lastDumpTotal(pid: number): number {
  const dumps = readdirSync(work)
    .filter((name) => name.startsWith(`callgrind.${pid}.`))
    .sort((a, b) => Number(a.split(".").pop()) - Number(b.split(".").pop()));
  const newest = dumps.at(-1);
  if (newest === undefined) throw new Error(`callgrind wrote no dump for process ${pid}`);
  const summary = /^summary: (\d+)$/m.exec(readFileSync(path.join(work, newest), "utf8"));
  if (summary === null) throw new Error(`${newest} has no summary line`);
  return Number(summary[1]);
}
