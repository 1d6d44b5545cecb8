// A real etcd for the discovery tests: its own free ports and temporary data
// directory, started until healthy, stopped and removed when the scope ends.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** The binary run; override with SWITCHYARD_ETCD_BINARY. */
const ETCD_BINARY = process.env.SWITCHYARD_ETCD_BINARY ?? "etcd";
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

/** Where clean-up is registered: a node:test TestContext, or anything with `after`. */
export interface EtcdScope {
  after(fn: () => unknown): void;
}

/** A running (or stopped, between stop() and start()) single-member etcd. */
export interface EtcdServer {
  /** `<host>:<port>` (127.0.0.1 unless another host was given), for etcd clients. */
  readonly endpoint: string;
  /** `etcd://<host>:<port>`, for `--registry`. */
  readonly url: string;
  readonly dataDir: string;
  readonly running: boolean;
  /** Stops it (SIGTERM, or `SIGKILL` for a crash) and waits for the exit; the data stays. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports; `wipe` first deletes its data (an etcd that lost everything). */
  start(options?: { readonly wipe?: boolean }): Promise<void>;
}

/** Where etcd runs; the default is this host, on 127.0.0.1. */
export interface EtcdOptions {
  /** The address it listens on (clients and peer). Default `127.0.0.1`. */
  readonly host?: string;
  /** A command that runs etcd elsewhere, e.g. `["ip", "netns", "exec", "<namespace>"]` (it must exec etcd, keeping its pid). */
  readonly prefix?: readonly string[];
}

/** Starts etcd; fails with an actionable message when the binary is missing or it does not become healthy. */
export async function startEtcd(scope: EtcdScope, options: EtcdOptions = {}): Promise<EtcdServer> {
  const dataRoot = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-etcd-"));
  const dataDir = path.join(dataRoot, "data");
  const [clientPort, peerPort] = await freePorts(2);
  const host = options.host ?? "127.0.0.1";
  const endpoint = `${host}:${clientPort}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = "";

  const start = async (): Promise<void> => {
    if (child) throw new Error("etcd is already running");
    output = "";
    const [command = ETCD_BINARY, ...prefixArgs] = [...(options.prefix ?? []), ETCD_BINARY];
    const spawned = spawn(
      command,
      [
        ...prefixArgs,
        "--name=switchyard-test",
        `--data-dir=${dataDir}`,
        `--listen-client-urls=http://${endpoint}`,
        `--advertise-client-urls=http://${endpoint}`,
        `--listen-peer-urls=http://${host}:${peerPort}`,
        `--initial-advertise-peer-urls=http://${host}:${peerPort}`,
        `--initial-cluster=switchyard-test=http://${host}:${peerPort}`,
        "--logger=zap",
        "--log-level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = spawned;
    spawned.stdout?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    spawned.stderr?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const failedToSpawn = new Promise<never>((_, reject) =>
      spawned.once("error", (error: NodeJS.ErrnoException) => {
        reject(
          error.code === "ENOENT"
            ? new Error(
                `the discovery tests need a real etcd, but "${ETCD_BINARY}" is not installed ` +
                  "(Debian: apt-get install etcd-server etcd-client; or set SWITCHYARD_ETCD_BINARY)",
              )
            : error,
        );
      }),
    );
    failedToSpawn.catch(() => undefined);
    exited = new Promise<void>((resolve) =>
      spawned.once("close", () => {
        if (child === spawned) child = undefined;
        resolve();
      }),
    );
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const healthy = await Promise.race([isHealthy(endpoint), failedToSpawn]);
      if (healthy) return;
      if (child !== spawned) throw new Error(`etcd exited while starting:\n${output}`);
      if (Date.now() > deadline) {
        spawned.kill("SIGKILL");
        throw new Error(`etcd on ${endpoint} was not healthy within ${START_TIMEOUT_MS} ms:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const stop = async (signal: NodeJS.Signals = "SIGTERM"): Promise<void> => {
    const running = child;
    if (!running) return;
    running.kill(signal);
    const timer = setTimeout(() => running.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  scope.after(async () => {
    await stop("SIGKILL");
    await fs.rm(dataRoot, { recursive: true, force: true });
  });
  await start();

  return {
    endpoint,
    url: `etcd://${endpoint}`,
    dataDir,
    get running() {
      return child !== undefined;
    },
    stop,
    async start(options = {}) {
      if (options.wipe) await fs.rm(dataDir, { recursive: true, force: true });
      await start();
    },
  };
}

/** etcd's /health answer; a fresh connection each time (a kept-alive one would hold the test process open). */
function isHealthy(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(`http://${endpoint}/health`, { agent: false, timeout: 1_000 }, (response) => {
      let body = "";
      response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        try {
          resolve(response.statusCode === 200 && (JSON.parse(body) as { health?: unknown }).health === "true");
        } catch {
          resolve(false);
        }
      });
    });
    request.on("timeout", () => request.destroy());
    request.on("error", () => resolve(false));
  });
}

/** Ports nothing listens on: all bound at once (so they differ), then released. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const server = net.createServer();
      return new Promise<net.Server>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", () => resolve(server)));
    }),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
