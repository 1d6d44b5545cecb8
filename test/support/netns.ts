// Hosts for multi-host fault tests: each host is a Linux network namespace
// with one IP address on a bridge shared by the test run (veth pairs; the
// root namespace, where the test runs, has the bridge's own address). A
// host's link can be set down and up (a partition); commands run inside it
// with `ip netns exec`. Needs root and iproute2.
//
// Every name a run makes starts with `swy<pid in base 36>-`, so a later run
// can tell (by the pid no longer running) what a crashed run left behind and
// remove it: namespaces, the processes still in them, bridges.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { promisify } from "node:util";
import { parseLogLine, type LogLine } from "./cli-process.js";

const run = promisify(execFile);
const NAME_PATTERN = /^swy([0-9a-z]+)-/;
/** The second octet of every test network: 10.231.<n>.0/24. */
const NETWORK_PREFIX = "10.231";

/** Where clean-up is registered: a node:test TestContext, a Cleanup, or anything with `after`. */
export interface NetworkScope {
  after(fn: () => unknown): void;
}

/** Runs `ip` with arguments; rejects with its stderr. */
export async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run("ip", args, { encoding: "utf8" });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`ip ${args.join(" ")} failed: ${stderr.trim() || (error as Error).message}`);
  }
}

/** Why network namespaces cannot be used here, or undefined when they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root";
  try {
    await run("ip", ["netns", "list"]);
  } catch {
    return "iproute2 (`ip`) is not installed (Debian: apt-get install iproute2)";
  }
  return undefined;
}

/** A test network: a bridge in the root namespace, and hosts on it. */
export interface Network {
  /** The run's name prefix, e.g. `swyhjp`. */
  readonly prefix: string;
  /** The bridge's address, reachable from every host: the root namespace (this process). */
  readonly gateway: string;
  /** Adds a host: a namespace with loopback up and `eth0` at the next address of the network. */
  addHost(name: string): Promise<Host>;
  /** Kills what runs in the hosts, deletes them and the bridge. Safe to call twice. */
  close(): Promise<void>;
}

/** One namespace on the network. */
export interface Host {
  /** The name the test gave it, e.g. `user-a`. */
  readonly name: string;
  /** The namespace's name, for `ip netns exec`. */
  readonly namespace: string;
  readonly ip: string;
  /** Starts `command args…` inside the namespace (`ip netns exec`, which execs: the pid is the command's). */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): HostProcess;
  /** Cuts the host off the network (its bridge port's link down) — a partition. */
  linkDown(): Promise<void>;
  /** Reconnects it. */
  linkUp(): Promise<void>;
}

/** Options of Host.spawn. */
export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** stderr lines to neither keep nor parse (e.g. a server's per-call log lines under load); listeners still get them. */
  readonly dropLines?: RegExp;
}

/** How a process ended. */
export interface HostExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A process running inside a host. Its stderr is kept and read as JSON log lines. */
export interface HostProcess {
  readonly pid: number;
  readonly host: Host;
  readonly exited: Promise<HostExit>;
  readonly hasExited: boolean;
  stdout(): string;
  stderr(): string;
  /** The JSON lines of stderr so far. */
  logs(): LogLine[];
  /** Calls `listener` for every stderr line from now on; returns an unsubscribe function. */
  onLine(listener: (line: string) => void): () => void;
  /** Resolves with the first JSON line (written already or to come) that matches; rejects on exit or timeout. */
  waitForLog(predicate: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  signal(signal: NodeJS.Signals): void;
  /** Signals (default SIGTERM) and waits for the exit; SIGKILLs after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<HostExit>;
}

/** Largest stderr kept per process, so a chatty one cannot fill the memory. */
const MAX_KEPT_OUTPUT = 4 * 1024 * 1024;

// Every process still running, killed when this process exits however it ends.
const live = new Set<ChildProcess>();
const killAll = (): void => {
  for (const child of live) child.kill("SIGKILL");
};
process.once("exit", killAll);
// A signal (a runner's timeout) runs no "exit" handlers: kill them, then die of the same signal.
for (const signal of ["SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

/** Creates a network with a bridge of its own, after removing what crashed runs left. */
export async function createNetwork(scope: NetworkScope): Promise<Network> {
  await removeLeftovers();
  const prefix = `swy${process.pid.toString(36)}`;
  const bridge = `${prefix}-br`;
  const subnet = await freeSubnet();
  const gateway = `${subnet}.1`;
  const hosts: Array<{ host: Host; processes: Set<HostProcess> }> = [];
  let closed = false;

  // A network of this pid that a previous test file of the same process left (unlikely): remove it first.
  await removeNamed((name) => name.startsWith(`${prefix}-`));
  await ip("link", "add", bridge, "type", "bridge");
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const { processes } of hosts) for (const child of processes) child.signal("SIGKILL");
    await Promise.all(hosts.flatMap(({ processes }) => [...processes].map((child) => child.exited)));
    await removeNamed((name) => name.startsWith(`${prefix}-`));
  };
  scope.after(close);
  await ip("addr", "add", `${gateway}/24`, "dev", bridge);
  await ip("link", "set", bridge, "up");

  return {
    prefix,
    gateway,
    close,
    async addHost(name) {
      if (!/^[a-z0-9-]{1,20}$/.test(name)) throw new Error(`host name ${name}: use a-z, 0-9 and -`);
      const index = hosts.length + 1;
      if (index > 200) throw new Error("at most 200 hosts per network");
      const namespace = `${prefix}-${name}`;
      const veth = `${prefix}-h${index}`;
      const address = `${subnet}.${index + 1}`;
      await ip("netns", "add", namespace);
      await ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace);
      await ip("link", "set", veth, "master", bridge);
      await ip("link", "set", veth, "up");
      await ip("-n", namespace, "addr", "add", `${address}/24`, "dev", "eth0");
      await ip("-n", namespace, "link", "set", "eth0", "up");
      await ip("-n", namespace, "link", "set", "lo", "up");
      const processes = new Set<HostProcess>();
      const host: Host = {
        name,
        namespace,
        ip: address,
        spawn(command, args, options = {}) {
          const child = startProcess(host, command, args, options);
          processes.add(child);
          void child.exited.then(() => processes.delete(child));
          return child;
        },
        linkDown: async () => void (await ip("link", "set", veth, "down")),
        linkUp: async () => void (await ip("link", "set", veth, "up")),
      };
      hosts.push({ host, processes });
      return host;
    },
  };
}

function startProcess(
  host: Host,
  command: string,
  args: readonly string[],
  options: SpawnOptions,
): HostProcess {
  const child = spawn("ip", ["netns", "exec", host.namespace, command, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: options.env ?? process.env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  live.add(child);
  let stdout = "";
  let stderr = "";
  let partial = "";
  const parsed: LogLine[] = [];
  const listeners = new Set<(line: string) => void>();
  let exit: HostExit | undefined;
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    if (stdout.length < MAX_KEPT_OUTPUT) stdout += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      for (const listener of listeners) listener(line);
      if (options.dropLines?.test(line)) continue;
      if (stderr.length < MAX_KEPT_OUTPUT) stderr += `${line}\n`;
      const log = parseLogLine(line);
      if (log !== undefined && parsed.length < 100_000) parsed.push(log);
    }
  });
  const exited = new Promise<HostExit>((resolve) => {
    child.once("error", () => {
      live.delete(child);
      exit = { code: null, signal: null };
      resolve(exit);
    });
    child.once("close", (code, signal) => {
      live.delete(child);
      exit = { code, signal };
      resolve(exit);
    });
  });
  const result: HostProcess = {
    pid: child.pid ?? -1,
    host,
    exited,
    get hasExited() {
      return exit !== undefined;
    },
    stdout: () => stdout,
    stderr: () => stderr,
    logs: () => [...parsed],
    onLine(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    waitForLog(predicate, what, timeoutMs = 60_000) {
      const found = parsed.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise<LogLine>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${host.name}: no log line ${what} within ${timeoutMs} ms. stderr:\n${stderr.slice(-4_000)}`)), timeoutMs);
        const unsubscribe = result.onLine((line) => {
          const log = parseLogLine(line);
          if (log !== undefined && predicate(log)) finish(log);
        });
        void exited.then((how) =>
          finish(new Error(`${host.name}: exited (${how.code ?? how.signal}) before a log line ${what}. stderr:\n${stderr.slice(-4_000)}`)),
        );
        function finish(outcome: LogLine | Error): void {
          clearTimeout(timer);
          unsubscribe();
          if (outcome instanceof Error) reject(outcome);
          else resolve(outcome);
        }
      });
    },
    signal(signal) {
      if (exit === undefined) child.kill(signal);
    },
    async stop(signal = "SIGTERM", timeoutMs = 15_000) {
      result.signal(signal);
      const timer = setTimeout(() => result.signal("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return result;
}

/** A /24 of 10.231.x.0 that no interface of the root namespace uses. */
async function freeSubnet(): Promise<string> {
  const used = await ip("-o", "-4", "addr", "show");
  const start = process.pid % 250;
  for (let i = 0; i < 250; i++) {
    const candidate = `${NETWORK_PREFIX}.${((start + i) % 250) + 1}`;
    if (!used.includes(` ${candidate}.`)) return candidate;
  }
  throw new Error(`no free ${NETWORK_PREFIX}.x.0/24 for a test network`);
}

/** Removes the namespaces and links of runs whose process is gone. */
async function removeLeftovers(): Promise<void> {
  await removeNamed((name) => {
    const match = NAME_PATTERN.exec(name);
    if (!match?.[1]) return false;
    return !isRunning(Number.parseInt(match[1], 36));
  });
}

/** Removes every namespace and link whose name matches: the processes inside first (a namespace lives as long as they do). */
async function removeNamed(matches: (name: string) => boolean): Promise<void> {
  const namespaces = (await ip("netns", "list"))
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name !== "" && matches(name));
  for (const namespace of namespaces) {
    const pids = (await ip("netns", "pids", namespace).catch(() => ""))
      .split("\n")
      .map((pid) => Number(pid))
      .filter((pid) => Number.isInteger(pid) && pid > 0);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await ip("netns", "del", namespace).catch(() => undefined);
  }
  const links = (await ip("-o", "link", "show"))
    .split("\n")
    .map((line) => /^\d+: ([^:@\s]+)/.exec(line)?.[1] ?? "")
    .filter((name) => name !== "" && matches(name));
  // Bridges last is not needed: deleting a veth end deletes its pair, and the bridge then has no ports.
  for (const link of links) await ip("link", "del", link).catch(() => undefined);
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Seconds of CPU (user + system) a process has used, from /proc; undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100;
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds a process's main thread (a Node process's event loop) has
 * spent runnable but waiting for a CPU, from /proc/<pid>/schedstat; undefined
 * when it is gone. On a busy machine, the time it could not act however fast it is.
 */
export function runQueueWaitMs(pid: number): number | undefined {
  try {
    const [, waitingNs] = fs.readFileSync(`/proc/${pid}/schedstat`, "utf8").trim().split(/\s+/);
    return Number(waitingNs) / 1e6;
  } catch {
    return undefined;
  }
}
