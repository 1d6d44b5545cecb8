/**
 * The stages of taking Switchyard down, in the order they run, each waiting
 * for the one before: callers stop being sent here (health NOT_SERVING, out of
 * the registry) before the server stops accepting and drains; the calls in
 * flight finish before the channels they call through close; the certificate
 * watchers stop next; stores and telemetry close last, so that the last
 * calls' writes land and their spans are exported.
 *
 * It is the reverse of the order things come up in, stage by stage. Within a
 * stage it is not: the certificates are loaded before the stores (a wrong
 * file fails the start before any store opens) and the channel to
 * UserService is made before the server listens, yet both close in their
 * stage, after the drain. Hence stages rather than a plain last-in, first-out list.
 */
export const CLEANUP_STAGES = ["health", "registry", "server", "channels", "tls", "state"] as const;

/** One of CLEANUP_STAGES. */
export type CleanupStage = (typeof CLEANUP_STAGES)[number];

/** Releases one resource. */
export type Closer = () => void | Promise<void>;

/**
 * The closers of what a start has opened so far: what a failed start unwinds
 * before it rethrows, and what close() unwinds. One list, so that a resource
 * added to the wiring is released on every path once its closer is pushed.
 */
export interface CleanupStack {
  /** Registers the closer of a resource just opened, to run in `stage`. */
  push(stage: CleanupStage, close: Closer): void;
  /**
   * Runs the closers pushed so far, stage after stage; those of one stage are
   * called in the order pushed and awaited together. A closer that fails
   * does not stop the others (a registry that cannot be reached must not keep
   * the server from draining or the stores from closing): once every stage
   * has run, the failure is thrown (several together, as an AggregateError).
   */
  unwind(): Promise<void>;
}

/** An empty CleanupStack. */
export function createCleanupStack(): CleanupStack {
  const pushed: { readonly stage: CleanupStage; readonly close: Closer }[] = [];
  return {
    push(stage, close) {
      pushed.push({ stage, close });
    },
    async unwind() {
      const failures: unknown[] = [];
      for (const stage of CLEANUP_STAGES) {
        const closers = pushed.filter((entry) => entry.stage === stage);
        const settled = await Promise.allSettled(closers.map(async (entry) => entry.close()));
        for (const result of settled) if (result.status === "rejected") failures.push(result.reason);
      }
      if (failures.length === 1) throw failures[0];
      if (failures.length > 1) throw new AggregateError(failures, "several resources could not be closed");
    },
  };
}
