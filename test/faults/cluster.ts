// Helpers of the fault-injection suite: Switchyard servers on network-namespace
// hosts, their Prometheus counters, a steady load that records every outcome,
// and the way the hosts reach the machine's PostgreSQL.
//
// Costs matter here: the suite drives a few hundred calls a second through
// three processes per call on two shared cores. So the servers run compiled
// JavaScript (tsx's loader costs seconds of CPU per start, paid again at every
// restart under load), they write no per-call log lines (a line per call per
// process, and this process reading them all), and the hosts reach
// PostgreSQL through its Unix socket rather than a TCP forwarder process.
import fs from "node:fs";
import fsp from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import type { Etcd3 } from "etcd3";
import { REPO_ROOT } from "../support/cli-process.js";
import type { Host, HostProcess, Network, NetworkScope } from "../support/netns.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";

const execFileAsync = promisify(execFile);

/** The gRPC port every server listens on, each on its own host's address. */
export const SERVE_PORT = 50051;
/** The Prometheus port every server serves on. */
export const METRICS_PORT = 9464;

/** A `switchyard serve` on a host that can be stopped and started again with the same flags. */
export interface ServerOnHost {
  readonly host: Host;
  /** `<ip>:50051`. */
  readonly address: string;
  /** The running process (the latest one after a restart). */
  readonly process: HostProcess;
  /** The etcd keys the running process registered (empty without a registry). */
  readonly keys: readonly string[];
  /** The latest start: ms from spawn until it accepted connections, and until it was registered (or listening, without a registry). */
  readonly lastStart: { readonly listeningMs: number; readonly servingMs: number };
  /** Starts it (again) and waits until it listens and, with a registry, is registered. */
  start(): Promise<void>;
  /** Stops the running process (SIGTERM drains; SIGKILL is a crash). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Options of serveOn. */
export interface ServeOnOptions {
  /** Environment added to this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * The registry the server registers in (`--registry` among the args): it
   * counts as started once its keys are there. Without it, once it accepts
   * TCP connections.
   */
  readonly registry?: Etcd3;
}

/** The compiled servers of this test process, shared by every serveOn (compiled once). */
let compiled: Promise<string> | undefined;

/**
 * Compiles src/ (tsc, emit only: the type check is `npm run check`'s job)
 * into a temporary directory that sees the repository's node_modules, once
 * per test process, and returns the compiled CLI's path. Removed at exit.
 */
export function compiledCli(): Promise<string> {
  compiled ??= (async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), "switchyard-faults-build-"));
    process.once("exit", () => fs.rmSync(root, { recursive: true, force: true }));
    // src/cli/main.ts reads ../../package.json; packages resolve through the symlink.
    await fsp.copyFile(path.join(REPO_ROOT, "package.json"), path.join(root, "package.json"));
    await fsp.symlink(path.join(REPO_ROOT, "node_modules"), path.join(root, "node_modules"), "dir");
    const tsc = path.join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
    const outDir = path.join(root, "dist");
    const args = [tsc, "-p", path.join(REPO_ROOT, "tsconfig.json"), "--outDir", outDir, "--noCheck", "--sourceMap", "false", "--incremental", "false"];
    try {
      await execFileAsync(process.execPath, args, { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
    } catch (error) {
      // tsc exits 2 when it emitted but reported errors; the emitted files are there.
      if (!fs.existsSync(path.join(outDir, "cli", "main.js"))) {
        const output = (error as { stdout?: string }).stdout ?? (error as Error).message;
        throw new Error(`could not compile src/ for the fault tests:\n${output.slice(0, 4_000)}`);
      }
    }
    return path.join(outDir, "cli", "main.js");
  })();
  return compiled;
}

/**
 * `switchyard serve --host <ip> --port 50051 --metrics-port 9464 --log-level warn <args>`
 * on a host, started (compiled; see compiledCli). At `warn` a server writes no
 * line per call; `--log-level info` among `args` brings them back.
 */
export async function serveOn(host: Host, args: readonly string[], options: ServeOnOptions = {}): Promise<ServerOnHost> {
  const cli = await compiledCli();
  let current: HostProcess | undefined;
  let keys: readonly string[] = [];
  let lastStart = { listeningMs: 0, servingMs: 0 };
  const address = `${host.ip}:${SERVE_PORT}`;
  const server: ServerOnHost = {
    host,
    address,
    get process() {
      if (current === undefined) throw new Error(`${host.name} was never started`);
      return current;
    },
    get keys() {
      return keys;
    },
    get lastStart() {
      return lastStart;
    },
    async start() {
      if (current !== undefined && !current.hasExited) throw new Error(`${host.name} is running already`);
      // Started at a low priority, raised once it serves: on this one machine a
      // starting process would otherwise take the CPU from the running ones,
      // which on real hosts it cannot.
      const child = host.spawn(
        "nice",
        [
          "-n",
          "10",
          process.execPath,
          cli,
          "serve",
          "--host",
          host.ip,
          "--port",
          String(SERVE_PORT),
          "--metrics-port",
          String(METRICS_PORT),
          "--log-level",
          "warn",
          ...args,
        ],
        { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: "1", ...options.env }, dropLines: /"msg":"call finished"/ },
      );
      current = child;
      const spawnedAt = Date.now();
      const serving = await waitUntilServing(child, address, options.registry);
      keys = serving.keys;
      lastStart = { listeningMs: serving.listeningAt - spawnedAt, servingMs: Date.now() - spawnedAt };
      await execFileAsync("renice", ["-n", "0", "-p", String(child.pid)]).catch(() => undefined);
    },
    async stop(signal = "SIGTERM") {
      await current?.stop(signal);
    },
  };
  await server.start();
  return server;
}

/** How long a server may take to start (tsc-compiled, but on a busy machine). */
const START_TIMEOUT_MS = 60_000;

/**
 * Waits until `child` accepts connections on `address` and, with a registry,
 * until its keys are in etcd (a key's instance id holds the pid, so a key a
 * killed predecessor left behind does not count). Returns those keys, and
 * when it first accepted a connection.
 */
async function waitUntilServing(child: HostProcess, address: string, registry: Etcd3 | undefined): Promise<{ keys: string[]; listeningAt: number }> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  const [hostname = "", port = ""] = address.split(":");
  let listeningAt: number | undefined;
  for (;;) {
    if (child.hasExited) throw new Error(`${child.host.name} exited before it served. stderr:\n${child.stderr().slice(-4_000)}`);
    if (listeningAt === undefined && (await connects(hostname, Number(port)))) listeningAt = Date.now();
    if (listeningAt !== undefined && registry === undefined) return { keys: [], listeningAt };
    if (listeningAt !== undefined && registry !== undefined) {
      const listed = await registry.getAll().prefix("/").strings().catch(() => ({}) as Record<string, string>);
      const own = Object.entries(listed)
        .filter(([key, value]) => value === address && key.includes(`-${child.pid}-`))
        .map(([key]) => key);
      if (own.length > 0) return { keys: own, listeningAt };
    }
    if (Date.now() > deadline) throw new Error(`${child.host.name} did not serve within ${START_TIMEOUT_MS} ms. stderr:\n${child.stderr().slice(-4_000)}`);
    await sleep(50);
  }
}

function connects(hostname: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port, timeout: 1_000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * A PostgreSQL URL the hosts can use for `url` (a server on this machine):
 * through its Unix socket when it has one — network namespaces share the file
 * system, so every host reaches it at no cost, like a database on a network
 * that is not under test — else through a TCP forwarder on the bridge (it
 * listens on 127.0.0.1 only), a process of its own.
 */
export async function databaseForHosts(scope: NetworkScope, network: Network, url: string): Promise<{ readonly url: string; readonly via: string }> {
  const parsed = new URL(url);
  const port = parsed.port || "5432";
  const local = ["127.0.0.1", "localhost", "[::1]"].includes(parsed.hostname);
  for (const dir of ["/var/run/postgresql", "/tmp"]) {
    if (local && fs.existsSync(path.join(dir, `.s.PGSQL.${port}`))) {
      parsed.searchParams.set("host", dir);
      return { url: parsed.toString(), via: `unix socket ${dir}/.s.PGSQL.${port}` };
    }
  }
  const forwarder = await forwardTcp(scope, network.gateway, { host: parsed.hostname, port: Number(port) });
  parsed.hostname = network.gateway;
  parsed.port = String(forwarder.port);
  return { url: parsed.toString(), via: `TCP forwarder ${network.gateway}:${forwarder.port}` };
}

/** The sum of a Prometheus counter's series whose labels include `labels`. */
export async function counter(host: Host, name: string, labels: Readonly<Record<string, string>>): Promise<number> {
  const text = await get(`http://${host.ip}:${METRICS_PORT}/metrics`);
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = /\{(.*)\}/.exec(line)?.[1] ?? "";
    if (Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

/** Calls of a method a server has started (attempts, retries included), from grpc_server_started_total. */
export function startedCalls(host: Host, method: string): Promise<number> {
  return counter(host, "grpc_server_started_total", { grpc_method: method });
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: 5_000 }, (response) => {
      let body = "";
      response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve(body));
    });
    request.on("timeout", () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on("error", reject);
  });
}

/** One call the load made. Times are epoch ms (comparable with other processes' clocks). */
export interface CallRecord {
  /** The idempotency key (CreateOrder's order_id). */
  readonly id: string;
  readonly startedAt: number;
  readonly endedAt: number;
  /** 0 (OK) or the failure's status code; -1 for an error that is not a status. */
  readonly code: number;
  /** The failure's message (empty for OK). */
  readonly message: string;
}

/** Counts of a set of records. */
export interface Summary {
  readonly calls: number;
  readonly ok: number;
  readonly failed: number;
  /** Failures by status name. */
  readonly codes: Readonly<Record<string, number>>;
  /** Milliseconds, of all the calls. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Summarises records (e.g. those of one window). */
export function summarize(records: readonly CallRecord[]): Summary {
  const codes: Record<string, number> = {};
  for (const record of records) {
    if (record.code === 0) continue;
    const name = Code[record.code] ?? String(record.code);
    codes[name] = (codes[name] ?? 0) + 1;
  }
  const latencies = records.map((record) => record.endedAt - record.startedAt).sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  const ok = records.filter((record) => record.code === 0).length;
  return { calls: records.length, ok, failed: records.length - ok, codes, p50: at(0.5), p99: at(0.99), max: latencies.at(-1) ?? 0 };
}

/** Options of a steady load. */
export interface LoadOptions {
  /** Calls started per second (open loop: a slow answer does not slow the load down). */
  readonly rate: number;
  /** Prefix of the ids (`<prefix>-<n>`). */
  readonly prefix: string;
  /** Most calls in flight; beyond that a due call is counted in `skipped` instead of started. Default 2000. */
  readonly maxInFlight?: number;
  /**
   * Send a failed id again (the same idempotency key) after this many ms, until
   * it succeeds — what a client that wants its order placed does. Default: never.
   */
  readonly resendAfterMs?: number;
}

/** A steady load of calls, each recorded with its outcome. */
export interface Load {
  readonly records: readonly CallRecord[];
  /** Due calls not started because maxInFlight were in flight. */
  readonly skipped: number;
  readonly inFlight: number;
  /** Ids started (each counted once, however often it was sent). */
  readonly ids: ReadonlySet<string>;
  /** Ids that succeeded at least once. */
  readonly acknowledged: ReadonlySet<string>;
  /** Records started in [from, to) (epoch ms). */
  between(from: number, to?: number): CallRecord[];
  /** Stops starting new ids; with resending, waits up to `timeoutMs` until every id is acknowledged. Then waits for the calls in flight. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Starts calling `call(id)` `rate` times a second. */
export function startLoad(call: (id: string) => Promise<unknown>, options: LoadOptions): Load {
  const records: CallRecord[] = [];
  const ids = new Set<string>();
  const acknowledged = new Set<string>();
  const pending = new Set<Promise<void>>();
  const resendTimers = new Set<NodeJS.Timeout>();
  const maxInFlight = options.maxInFlight ?? 2_000;
  let issued = 0;
  let skipped = 0;
  let stopping = false;
  const startedAt = performance.now();

  const send = (id: string): void => {
    if (pending.size >= maxInFlight) {
      skipped++;
      if (options.resendAfterMs !== undefined) scheduleResend(id);
      return;
    }
    const started = Date.now();
    const done = call(id).then(
      () => ({ code: 0, message: "" }),
      (error: unknown) => ({ code: error instanceof ClientError ? error.code : -1, message: error instanceof Error ? error.message : String(error) }),
    );
    const settled = done.then(({ code, message }) => {
      records.push({ id, startedAt: started, endedAt: Date.now(), code, message });
      if (code === 0) acknowledged.add(id);
      else if (options.resendAfterMs !== undefined) scheduleResend(id);
    });
    pending.add(settled);
    void settled.finally(() => pending.delete(settled));
  };
  const scheduleResend = (id: string): void => {
    const timer = setTimeout(() => {
      resendTimers.delete(timer);
      send(id);
    }, options.resendAfterMs);
    resendTimers.add(timer);
  };
  const ticker = setInterval(() => {
    if (stopping) return;
    const due = Math.floor(((performance.now() - startedAt) / 1000) * options.rate);
    while (issued < due) {
      issued++;
      const id = `${options.prefix}-${issued}`;
      ids.add(id);
      send(id);
    }
  }, 5);

  return {
    records,
    ids,
    acknowledged,
    get skipped() {
      return skipped;
    },
    get inFlight() {
      return pending.size;
    },
    between: (from, to = Number.POSITIVE_INFINITY) => records.filter((record) => record.startedAt >= from && record.startedAt < to),
    async stop(timeoutMs = 0) {
      stopping = true;
      clearInterval(ticker);
      const deadline = Date.now() + timeoutMs;
      while (options.resendAfterMs !== undefined && acknowledged.size < ids.size && Date.now() < deadline) {
        await sleep(50);
      }
      for (const timer of resendTimers) clearTimeout(timer);
      resendTimers.clear();
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

/**
 * Forwards TCP connections from `listenHost` (a port it picks) to `target`,
 * e.g. the hosts to 127.0.0.1:5432 — in a child process of its own, so that
 * the bytes do not wait for this (busy) process's event loop.
 */
export async function forwardTcp(
  scope: NetworkScope,
  listenHost: string,
  target: { readonly host: string; readonly port: number },
): Promise<{ readonly port: number }> {
  const child = spawn(process.execPath, ["-e", FORWARDER, listenHost, target.host, String(target.port)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  scope.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("close", resolve));
      child.kill("SIGKILL");
      await exited;
    }
  });
  process.once("exit", () => child.kill("SIGKILL"));
  const port = await new Promise<number>((resolve, reject) => {
    let output = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      const match = /^listening (\d+)$/m.exec(output);
      if (match?.[1]) resolve(Number(match[1]));
    });
    child.once("error", reject);
    child.once("close", (code) => reject(new Error(`the TCP forwarder exited (${code}) before listening`)));
  });
  return { port };
}

const FORWARDER = `
const net = require("node:net");
const [listenHost, targetHost, targetPort] = process.argv.slice(1);
const server = net.createServer((inbound) => {
  const outbound = net.connect(Number(targetPort), targetHost);
  const close = () => { inbound.destroy(); outbound.destroy(); };
  inbound.on("error", close).on("close", close);
  outbound.on("error", close).on("close", close);
  inbound.pipe(outbound).pipe(inbound);
});
server.listen(0, listenHost, () => console.log("listening " + server.address().port));
`;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value (not undefined); rejects after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? ` (${lastError.message})` : ""}`);
    }
    await sleep(intervalMs);
  }
}
