// Runs the switchyard CLI (src/cli/main.ts, through tsx) as a child process,
// the way an operator or a process supervisor would, for the process-level tests.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: children run there so that `--import tsx` resolves. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The CLI entry point, run from source. */
export const CLI_MAIN = path.join(REPO_ROOT, "src", "cli", "main.ts");

/** How long a server may take to print its listening line (generous: tsx compiles, and CI machines are loaded). */
const DEFAULT_START_TIMEOUT_MS = 60_000;
/** How long a one-shot command (`call`, `health`, a rejected `serve`) may run. */
const DEFAULT_RUN_TIMEOUT_MS = 60_000;
/** How long a stopped server may take to exit. */
const DEFAULT_STOP_TIMEOUT_MS = 15_000;

/** One JSON log line of the server (pino: `level`, `time`, `msg` and fields). */
export interface LogLine {
  readonly level?: number;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

/** How a child process ended, with everything it wrote. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Milliseconds from spawn to exit. */
  readonly durationMs: number;
}

// Every child still running. Killed when the test file's process exits, whatever
// happened to the test that started it (t.after covers the normal path).
const live = new Set<ChildProcess>();
const killAll = (): void => {
  for (const child of live) child.kill("SIGKILL");
};
process.once("exit", killAll);
// A test file process stopped by a signal (a runner's timeout) runs no "exit"
// handlers: kill the children first, then die of the same signal.
for (const signal of ["SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

/** Spawns `node --import tsx src/cli/main.ts <args>` and collects its output. */
class CliChild {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  readonly started = performance.now();
  stdout = "";
  stderr = "";
  private readonly lineListeners = new Set<(line: string) => void>();
  private partialLine = "";
  private exit: Exit | undefined;

  constructor(args: readonly string[], input?: string) {
    this.child = spawn(process.execPath, ["--import", "tsx", CLI_MAIN, ...args], {
      cwd: REPO_ROOT,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    live.add(this.child);
    if (input !== undefined) this.child.stdin?.end(input);
    this.child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    this.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
      const lines = (this.partialLine + chunk).split("\n");
      this.partialLine = lines.pop() ?? "";
      for (const line of lines) for (const listener of this.lineListeners) listener(line);
    });
    this.exited = new Promise<Exit>((resolve, reject) => {
      this.child.once("error", (error) => {
        live.delete(this.child);
        reject(error);
      });
      // "close", not "exit": by then stdout and stderr are fully read.
      this.child.once("close", (code, signal) => {
        live.delete(this.child);
        this.exit = {
          code,
          signal,
          stdout: this.stdout,
          stderr: this.stderr,
          durationMs: Math.round(performance.now() - this.started),
        };
        resolve(this.exit);
      });
    });
    // Failures are reported by whoever awaits; never an unhandled rejection.
    this.exited.catch(() => undefined);
  }

  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** Calls `listener` for every complete stderr line, past and future; returns an unsubscribe function. */
  onLine(listener: (line: string) => void): () => void {
    for (const line of this.stderr.split("\n").slice(0, -1)) listener(line);
    this.lineListeners.add(listener);
    return () => this.lineListeners.delete(listener);
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.hasExited) this.child.kill(signal);
  }

  /** Waits for the exit, SIGKILLing the child and failing when it takes longer than `timeoutMs`. */
  async waitForExit(timeoutMs: number, what: string): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.kill("SIGKILL");
        reject(new Error(`${what}: no exit within ${timeoutMs} ms; killed it. stderr:\n${this.stderr}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Parses a stderr line as a JSON log line; undefined for anything else. */
export function parseLogLine(line: string): LogLine | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as LogLine) : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a one-shot CLI command to completion: `call`, `health`, `serve --help`, a `serve` that must refuse. */
export async function runCli(
  args: readonly string[],
  options: { readonly timeoutMs?: number; readonly input?: string } = {},
): Promise<Exit> {
  const child = new CliChild(args, options.input);
  return child.waitForExit(options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS, `switchyard ${args.join(" ")}`);
}

/** Flags of `switchyard serve`; anything not given uses the test defaults below. */
export interface ServeOptions {
  /** Default: a fresh temporary directory, removed when the test ends. */
  readonly dataDir?: string;
  /** `user`, `order` or `user,order` (the CLI's default when absent). */
  readonly services?: string;
  readonly userService?: string;
  readonly databaseUrl?: string;
  readonly drainTimeoutMs?: number;
  /** Default `info`: the tests read the listening line and the call log. */
  readonly logLevel?: string;
  /** Default 0 (a free port). */
  readonly port?: number;
  readonly extraArgs?: readonly string[];
  readonly startTimeoutMs?: number;
}

/** A `switchyard serve` child that has printed its listening line. */
export interface ServerProcess {
  readonly pid: number;
  readonly port: number;
  /** `127.0.0.1:<port>`, as a gRPC target. */
  readonly address: string;
  readonly dataDir: string;
  /** The arguments it was started with, for error messages. */
  readonly args: readonly string[];
  stderr(): string;
  stdout(): string;
  /** The JSON log lines written so far. */
  logs(): LogLine[];
  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(predicate: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal (no-op once exited). */
  signal(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited, however it ended. */
  readonly exited: Promise<Exit>;
  readonly hasExited: boolean;
  /** Sends `signal` (default SIGTERM) and waits for the exit; SIGKILLs and fails after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** Waits for an exit already under way (after signal()); SIGKILLs and fails after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<Exit>;
}

/**
 * Where clean-up is registered: a node:test TestContext (cleaned when that test
 * ends) or a Cleanup (for a resource shared by the tests of a describe block).
 */
export interface CleanupScope {
  after(fn: () => unknown): void;
}

/** Clean-up for a describe block: register with `after`, run in the block's after() hook. */
export class Cleanup implements CleanupScope {
  private readonly steps: Array<() => unknown> = [];

  after(fn: () => unknown): void {
    this.steps.push(fn);
  }

  /** Runs the registered steps, last registered first; every step runs even if one fails. */
  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "clean-up failed");
  }
}

/** Creates a temporary directory that is removed when the scope ends. */
export async function tempDir(t: CleanupScope, prefix = "switchyard-e2e-"): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Starts `switchyard serve` and waits for its "switchyard listening on" line,
 * from which it learns the port. Fails with the child's stderr if the child
 * exits first or is not listening within the start timeout. The child is
 * SIGKILLed when the scope ends if it is still running.
 */
export async function startServer(t: CleanupScope, options: ServeOptions = {}): Promise<ServerProcess> {
  // A data dir of our own is removed after the child is gone, by the same clean-up step.
  const dataDir = options.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-data-")));
  const ownDataDir = options.dataDir === undefined ? dataDir : undefined;
  const args = [
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    String(options.port ?? 0),
    "--data-dir",
    dataDir,
    "--log-level",
    options.logLevel ?? "info",
    ...(options.services === undefined ? [] : ["--services", options.services]),
    ...(options.userService === undefined ? [] : ["--user-service", options.userService]),
    ...(options.databaseUrl === undefined ? [] : ["--database-url", options.databaseUrl]),
    ...(options.drainTimeoutMs === undefined ? [] : ["--drain-timeout", String(options.drainTimeoutMs)]),
    ...(options.extraArgs ?? []),
  ];
  const child = new CliChild(args);
  t.after(async () => {
    if (!child.hasExited) {
      child.kill("SIGKILL");
      await child.exited.catch(() => undefined);
    }
    if (ownDataDir !== undefined) await fs.rm(ownDataDir, { recursive: true, force: true });
  });

  const waitForLog = (predicate: (line: LogLine) => boolean, what: string, timeoutMs = DEFAULT_START_TIMEOUT_MS) =>
    new Promise<LogLine>((resolve, reject) => {
      let unsubscribe = (): void => undefined;
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`switchyard ${args.join(" ")}: no log line ${what} within ${timeoutMs} ms. stderr:\n${child.stderr}`));
      }, timeoutMs);
      let found = false;
      unsubscribe = child.onLine((text) => {
        const line = parseLogLine(text);
        if (found || line === undefined || !predicate(line)) return;
        found = true;
        done();
        resolve(line);
      });
      if (found) unsubscribe();
      void child.exited.then((exit) => {
        if (found) return;
        done();
        reject(
          new Error(
            `switchyard ${args.join(" ")} exited (code ${exit.code}, signal ${exit.signal}) before a log line ${what}. stderr:\n${exit.stderr}`,
          ),
        );
      }, reject);
    });

  const listening = await waitForLog(
    (line) => typeof line.msg === "string" && line.msg.startsWith("switchyard listening on"),
    'starting "switchyard listening on"',
    options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
  ).catch((error: unknown) => {
    child.kill("SIGKILL");
    throw error;
  });
  const address = listening["address"];
  const match = typeof address === "string" ? /^127\.0\.0\.1:(\d+)$/.exec(address) : null;
  if (match === null) {
    child.kill("SIGKILL");
    throw new Error(`the listening line has no address "127.0.0.1:<port>": ${JSON.stringify(listening)}`);
  }
  const port = Number(match[1]);
  const pid = child.child.pid;
  if (pid === undefined) throw new Error("the server child has no pid");

  return {
    pid,
    port,
    address: `127.0.0.1:${port}`,
    dataDir,
    args,
    stderr: () => child.stderr,
    stdout: () => child.stdout,
    logs: () => child.stderr.split("\n").flatMap<LogLine>((text) => parseLogLine(text) ?? []),
    waitForLog,
    signal: (signal) => child.kill(signal),
    exited: child.exited,
    get hasExited() {
      return child.hasExited;
    },
    stop(signal = "SIGTERM", timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
      child.kill(signal);
      return child.waitForExit(timeoutMs, `switchyard ${args.join(" ")} after ${signal}`);
    },
    waitForExit(timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
      return child.waitForExit(timeoutMs, `switchyard ${args.join(" ")}`);
    },
  };
}

/** The JSON log lines in a stderr text. */
export function logLinesOf(stderr: string): LogLine[] {
  return stderr.split("\n").flatMap<LogLine>((text) => parseLogLine(text) ?? []);
}

/**
 * Calls `check` until it returns something other than undefined, and returns
 * that; fails with `what` once `timeoutMs` has passed. For conditions a test
 * cannot be told about directly.
 */
export async function pollUntil<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${options.timeoutMs ?? 10_000} ms waiting for ${what}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25));
  }
}

/** A local TCP port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
