import { spawnSync } from "node:child_process";
import { copyFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { Runtime } from "./systems.js";

/** Where bench/tsconfig.build.json puts the compiled servers (git-ignored). */
const BUILD_DIR = ".bench-tmp/build";

/**
 * Compiles src/ and the baselines to plain JS with the project's TypeScript,
 * so that the servers under test run as `npm start` runs them: without the
 * tsx loader, which costs ~40 MB of RSS and a loader thread. Type errors
 * (other work in progress) do not stop the build; the JS is still emitted.
 */
export function compiledRuntime(repo: string, log: (line: string) => void): Runtime {
  const out = path.join(repo, BUILD_DIR);
  rmSync(out, { recursive: true, force: true });
  const tsc = path.join(repo, "node_modules/typescript/bin/tsc");
  const result = spawnSync(process.execPath, [tsc, "-p", path.join(repo, "bench/tsconfig.build.json")], {
    cwd: repo,
    encoding: "utf8",
  });
  // 0: clean; 2: diagnostics, output emitted anyway. Anything else: no output.
  if (result.status !== 0 && result.status !== 2) throw new Error(`tsc failed (${result.status}):\n${result.stdout}${result.stderr}`);
  if (result.status === 2) log(`warning: tsc reported type errors; running the emitted JS anyway:\n${result.stdout.slice(0, 2_000)}`);
  // The package scope for the emitted ESM (and what src/cli reads its version from).
  copyFileSync(path.join(repo, "package.json"), path.join(out, "package.json"));
  return { nodeArgs: (entry) => [path.join(out, entry.replace(/\.ts$/, ".js"))] };
}

/** Runs the TypeScript sources through tsx instead (slower start, more memory: say so when comparing RSS). */
export function tsxRuntime(): Runtime {
  return { nodeArgs: (entry) => ["--import", "tsx", entry] };
}
