/**
 * What the per-call probes (`bench:alloc`, `bench:instructions`) share: a
 * scratch directory, the compiled servers, and the loop that starts each
 * configuration and puts each of its methods under the bench's 128-stream
 * load, while the probe reads what the servers did.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compiledRuntime } from "./build.js";
import { type BenchMethod, METHOD_SPECS } from "./fixtures.js";
import { grpcFrame } from "./grpc-frame.js";
import { type H2loadResult, LOAD_SHAPES, type LoadShape, runH2load } from "./h2load.js";
import type { RunningSystem, Runtime, SystemConfig } from "./systems.js";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The bench's 128-stream shape (-c4 -m32). */
const SHAPE: LoadShape = LOAD_SHAPES.find((s) => s.name === "c4m32") ?? missingShape();

function missingShape(): never {
  throw new Error("bench/h2load.ts no longer has the c4m32 load shape");
}

/** A fresh `.bench-tmp/<name>-<pid>`, and the servers compiled; this process moves to the load CPU. */
export function prepare(name: string): { readonly work: string; readonly compiled: Runtime } {
  const work = path.join(REPO, ".bench-tmp", `${name}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  execFileSync("taskset", ["-a", "-c", "-p", "1", String(process.pid)], { stdio: "ignore" });
  return { work, compiled: compiledRuntime(REPO, (line) => process.stderr.write(`${line}\n`)) };
}

/** One method of one running configuration, and the load to put on it. */
export interface MethodUnderLoad {
  readonly config: SystemConfig;
  readonly method: BenchMethod;
  readonly system: RunningSystem;
  /** Loads it for some seconds or with a number of requests; throws if any request failed. */
  load(amount: { readonly seconds: number } | { readonly requests: number }): Promise<H2loadResult>;
}

/** Runs `probe` on every method of every configuration, each configuration started (and stopped) in turn. */
export async function probeEach(
  options: { readonly configs: readonly SystemConfig[]; readonly methods: readonly BenchMethod[]; readonly runtime: Runtime; readonly work: string },
  probe: (target: MethodUnderLoad) => Promise<void>,
): Promise<void> {
  const { work } = options;
  for (const config of options.configs) {
    const system = await config.start({ runtime: options.runtime, repo: REPO, cpu: "0", loadCpu: "1", dataDir: path.join(work, config.name) });
    try {
      for (const method of options.methods) {
        const spec = METHOD_SPECS[method];
        const bodyFile = path.join(work, `${method}.bin`);
        writeFileSync(bodyFile, grpcFrame(spec.request));
        const load: MethodUnderLoad["load"] = async (amount) => {
          const result = await runH2load({
            url: `http://127.0.0.1:${system.portFor(spec.service)}${spec.path}`,
            bodyFile,
            shape: SHAPE,
            durationSeconds: "seconds" in amount ? amount.seconds : 0,
            warmUpSeconds: 0,
            ...("requests" in amount ? { requests: amount.requests } : {}),
            logFile: path.join(work, "h2load.log"),
            cpu: "1",
          });
          const failed = result.failed + result.errored;
          if (failed > 0) throw new Error(`${config.name} ${method}: ${failed} requests failed`);
          return result;
        };
        await probe({ config, method, system, load });
      }
    } finally {
      await system.stop();
    }
  }
  rmSync(work, { recursive: true, force: true });
}
