/**
 * `npm run bench:alloc`: bytes the server allocates per call, for each
 * configuration and method, under the 128-stream load of the benchmark.
 * On a shared machine CPU time per call moves by ±15 % between runs of the
 * same build; bytes allocated do not, and the young-generation GC time
 * that is a quarter of a server's CPU here grows with them. So a change to
 * the hot path can be judged by this figure where a timing cannot tell.
 *
 * Each server runs with bench/allocation-sampler.ts preloaded; it samples
 * every 256 bytes allocated, so the figures are estimates within about 1 %.
 * Usage: npm run bench:alloc -- [--configs a,b] [--methods a,b] [--duration S] [--top N]
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { pickConfigs, pickMethods } from "./options.js";
import { prepare, probeEach, REPO } from "./per-call.js";
import type { Runtime } from "./systems.js";

/** One node of a V8 sampling heap profile (HeapProfiler.SamplingHeapProfileNode). */
interface ProfileNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly ProfileNode[];
}

const { values } = parseArgs({
  options: {
    configs: { type: "string", default: "bare-http2,switchyard-memory" },
    methods: { type: "string", default: "GetUser" },
    duration: { type: "string", default: "3" },
    top: { type: "string", default: "8" },
  },
});
const configs = pickConfigs(values.configs);
const methods = pickMethods(values.methods);
const durationSeconds = Number(values.duration);
const top = Number(values.top);
if (!(durationSeconds > 0) || !Number.isInteger(top) || top < 0) throw new Error("--duration takes a positive number of seconds, --top a whole number");

const { work, compiled } = prepare("alloc");
const sampler = pathToFileURL(path.join(REPO, ".bench-tmp", "build", "bench", "allocation-sampler.js")).href;
const runtime: Runtime = { nodeArgs: (entry) => ["--import", sampler, ...compiled.nodeArgs(entry)] };
process.env["SWITCHYARD_ALLOC_DIR"] = work;

await probeEach({ configs, methods, runtime, work }, async ({ config, method, system, load }) => {
  await load({ seconds: 2 }); // JIT warm-up: what is measured is the steady state.
  for (const server of system.processes) process.kill(server.pid, "SIGUSR2");
  const result = await load({ seconds: durationSeconds });
  for (const server of system.processes) process.kill(server.pid, "SIGUSR2");
  for (const server of system.processes) {
    const profile = await readProfile(path.join(work, `allocations-${server.pid}.json`));
    report(`${config.name} ${server.role} ${method}`, profile, result.succeeded);
  }
});

async function readProfile(file: string): Promise<ProfileNode> {
  for (let waited = 0; !existsSync(file); waited += 100) {
    if (waited > 30_000) throw new Error(`no allocation profile at ${file}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const parsed = JSON.parse(readFileSync(file, "utf8")) as { head?: ProfileNode; error?: string };
  rmSync(file);
  if (parsed.head === undefined) throw new Error(`the sampler failed: ${parsed.error ?? "no profile"}`);
  return parsed.head;
}

/** Prints bytes per call, and the code under which they were allocated: the innermost frame of ours (src/ or bench/), else Node's. */
function report(label: string, head: ProfileNode, calls: number): void {
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode, site: string): void => {
    const { functionName, url, lineNumber } = node.callFrame;
    const own = /\/build\/(src|bench)\//.exec(url);
    const here = own === null ? site : `${functionName || "(anonymous)"} ${url.slice(own.index + "/build/".length)}:${lineNumber + 1}`;
    total += node.selfSize;
    bySite.set(here, (bySite.get(here) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child, here);
  };
  walk(head, "(Node and V8, outside any of our frames)");
  process.stdout.write(`\n${label}: ${(total / calls).toFixed(0)} bytes per call over ${calls} calls\n`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${(bytes / calls).toFixed(0).padStart(8)}  ${site}\n`);
  }
}
