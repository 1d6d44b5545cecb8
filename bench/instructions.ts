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
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { pickConfigs, pickMethods } from "./options.js";
import { prepare, probeEach } from "./per-call.js";
import type { Runtime } from "./systems.js";

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

const { work, compiled } = prepare("instructions");
const runtime: Runtime = {
  nodeArgs: (entry) => ["--predictable", "--predictable-gc-schedule", ...compiled.nodeArgs(entry)],
  // --smc-check=all: V8 writes the code it runs (the JIT).
  launcher: ["valgrind", "--tool=callgrind", "--smc-check=all", `--callgrind-out-file=${path.join(work, "callgrind.%p")}`],
  readyTimeoutMs: 180_000,
};

await probeEach({ configs, methods, runtime, work }, async ({ config, method, system, load }) => {
  await load({ requests: warmUpCalls });
  for (const server of system.processes) callgrindControl("-z", server.pid);
  await load({ requests: calls });
  for (const server of system.processes) {
    callgrindControl("-d", server.pid);
    const count = lastDumpTotal(server.pid);
    process.stdout.write(`${config.name} ${server.role} ${method}: ${Math.round(count / calls)} instructions per call over ${calls} calls\n`);
  }
});

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
