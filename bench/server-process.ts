import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";

/** A server under test: one OS process, pinned to a CPU. */
export interface ServerProcess {
  /** e.g. "server", "user", "order": names the process in CPU and RSS figures. */
  readonly role: string;
  readonly pid: number;
  readonly port: number;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Options for startServerProcess. */
export interface ServerProcessOptions {
  readonly role: string;
  /** argv after `node`, e.g. ["dist/cli/main.js", "serve", …]. */
  readonly nodeArgs: readonly string[];
  readonly port: number;
  /** CPU list for `taskset -c`. */
  readonly cpu: string;
  readonly cwd: string;
  /** How long to wait for the port to accept connections. Default 30 s. */
  readonly readyTimeoutMs?: number;
  /** argv that runs node under a tool, e.g. valgrind's; the pid is then the tool's, which execs in place. Default none. */
  readonly launcher?: readonly string[];
}

/**
 * Starts `taskset -c CPU node …` and resolves once its port accepts TCP
 * connections. taskset execs node, so the child's pid is node's own and
 * /proc/<pid> describes the server.
 */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const child = spawn("taskset", ["-c", options.cpu, ...(options.launcher ?? []), process.execPath, ...options.nodeArgs], {
    cwd: options.cwd,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${options.role}: ${options.nodeArgs.join(" ")}`);

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  while (!(await accepts(options.port))) {
    if (exitCode !== undefined) throw new Error(`${options.role} exited with ${exitCode} before listening:\n${stderr}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${options.role} did not listen on port ${options.port} in time:\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    role: options.role,
    pid,
    port: options.port,
    stop: (graceMs = 5_000) => stopChild(child, exited, graceMs),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A port that was free a moment ago (the OS picks it; a race with other programs is possible but rare). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
