import cluster, { type Worker } from "node:cluster";
import type { Logger } from "../toolkit/log/logger.js";

/** The message the primary sends a worker to make it drain and exit. */
export const STOP_MESSAGE = "switchyard:stop";
/** The message a worker sends the primary once it listens, with the bound port. */
interface ReadyMessage {
  readonly kind: "switchyard:ready";
  readonly port: number;
}

function isReadyMessage(message: unknown): message is ReadyMessage {
  return typeof message === "object" && message !== null && (message as { kind?: unknown }).kind === "switchyard:ready";
}

/** Options for runWorkerCluster. */
export interface WorkerClusterOptions {
  /** Worker processes to keep running, at least 2. */
  readonly workers: number;
  readonly logger: Logger;
  /** How long a stop waits for the workers to drain before killing them. */
  readonly stopTimeoutMs: number;
  /** How long to wait before replacing a worker that died. Default 1000 ms. */
  readonly restartDelayMs?: number;
}

/** The primary process of a worker cluster. */
export interface WorkerCluster {
  /** Resolves with the shared port once every worker listens; rejects if one dies before it does. */
  readonly ready: Promise<number>;
  /** Asks every worker to drain and exit; resolves when all have (killing any left after the stop timeout). */
  stop(): Promise<void>;
}

/**
 * Runs `workers` copies of this program (node:cluster, same argv) that share
 * its listening port: the primary accepts connections and hands them to the
 * workers in turn, so one instance uses every core, for the price of one
 * process per core. A worker that dies after the cluster started is
 * replaced, with a growing delay while replacements keep dying; one that
 * dies before the cluster first listens stops it (a wrong flag or a busy
 * port would only die again). Workers must call `reportReady` once listening and
 * `onStopRequest` to drain on the primary's request.
 */
export function runWorkerCluster(options: WorkerClusterOptions): WorkerCluster {
  if (!cluster.isPrimary) throw new Error("runWorkerCluster runs in the primary process");
  if (!Number.isInteger(options.workers) || options.workers < 2) {
    throw new Error(`a worker cluster needs at least 2 workers, not ${options.workers}`);
  }
  const restartDelayMs = options.restartDelayMs ?? 1_000;
  const ready = new Set<Worker>();
  let stopping: Promise<void> | undefined;
  let resolveReady!: (port: number) => void;
  let rejectReady!: (error: Error) => void;
  const allReady = new Promise<number>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  let started = false;
  /** Replacements in a row that died before they listened. */
  let failures = 0;

  const fork = (): void => {
    const worker = cluster.fork();
    worker.on("message", (message: unknown) => {
      if (!isReadyMessage(message)) return;
      ready.add(worker);
      if (!started && ready.size === options.workers) {
        started = true;
        resolveReady(message.port);
      }
    });
    worker.on("exit", (code, signal) => {
      const wasReady = ready.delete(worker);
      if (stopping !== undefined) return;
      if (!started) {
        rejectReady(new Error(`worker ${worker.id} exited before it listened (${signal ?? `code ${code}`})`));
        void stop();
        return;
      }
      // After the start, a worker that dies (even a replacement that could not
      // start, say while a database restarts) is replaced, each time a little later.
      failures = wasReady ? 0 : failures + 1;
      const delayMs = Math.min(restartDelayMs * 2 ** failures, 30_000);
      options.logger.error({ worker: worker.id, code, signal, restartInMs: delayMs }, "worker died; starting a new one");
      // Not unref'd: with every worker gone, this timer is what keeps the primary alive.
      setTimeout(() => stopping ?? fork(), delayMs);
    });
  };

  const stop = (): Promise<void> => {
    stopping ??= new Promise<void>((resolve) => {
      const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined && !worker.isDead());
      if (workers.length === 0) return resolve();
      let left = workers.length;
      const timer = setTimeout(() => {
        options.logger.warn({ stopTimeoutMs: options.stopTimeoutMs }, "workers still running after the stop timeout; killing them");
        for (const worker of workers) worker.process.kill("SIGKILL");
        // SIGKILL cannot be refused: do not wait on exit events that may already have passed.
        setTimeout(resolve, 1_000).unref();
      }, options.stopTimeoutMs);
      for (const worker of workers) {
        worker.once("exit", () => {
          if (--left === 0) {
            clearTimeout(timer);
            resolve();
          }
        });
        // A worker that is already gone (or going) cannot take the message.
        if (worker.isConnected()) worker.send(STOP_MESSAGE, () => undefined);
        else worker.process.kill("SIGTERM");
      }
    });
    return stopping;
  };

  for (let i = 0; i < options.workers; i++) fork();
  return { ready: allReady, stop };
}

/** In a worker: tells the primary this worker listens on `port`. No-op outside a cluster. */
export function reportReady(port: number): void {
  if (cluster.isWorker) process.send?.({ kind: "switchyard:ready", port } satisfies ReadyMessage);
}

/** This process's worker number in a cluster; undefined outside one. */
export function workerId(): number | undefined {
  return cluster.worker?.id;
}

/** In a worker: calls `stop` when the primary asks this worker to drain. No-op outside a cluster. */
export function onStopRequest(stop: () => void): void {
  if (!cluster.isWorker) return;
  process.on("message", (message: unknown) => {
    if (message === STOP_MESSAGE) stop();
  });
}
