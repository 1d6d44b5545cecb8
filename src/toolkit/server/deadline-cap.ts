import { Code } from "../rpc/code.js";
import { RpcError } from "../rpc/rpc-error.js";

/**
 * How long a call may run on a server that caps deadlines: a call without a
 * deadline, or with one later than `maxDeadlineMs` from now, gets
 * `maxDeadlineMs`. Both engines apply it where they read `grpc-timeout`, so a
 * capped call costs no more than one with a deadline of its own (one timer).
 * Returns the timeout to enforce and whether it is the cap.
 */
export function cappedTimeout(
  clientTimeoutMs: number | undefined,
  maxDeadlineMs: number | undefined,
): { readonly timeoutMs: number | undefined; readonly capped: boolean } {
  if (maxDeadlineMs === undefined || (clientTimeoutMs !== undefined && clientTimeoutMs <= maxDeadlineMs)) {
    return { timeoutMs: clientTimeoutMs, capped: false };
  }
  return { timeoutMs: maxDeadlineMs, capped: true };
}

/** Checks a configured cap once, at server creation. */
export function checkMaxDeadline(maxDeadlineMs: number | undefined): void {
  if (maxDeadlineMs !== undefined && !(maxDeadlineMs > 0)) {
    throw new Error(`the maximum deadline must be positive, not ${maxDeadlineMs}`);
  }
}

/** What the caller of a call stopped by the server's cap hears, and the handler's signal carries. */
export function maxDeadlineExceeded(maxDeadlineMs: number): RpcError {
  return new RpcError(
    Code.DEADLINE_EXCEEDED,
    `the call took longer than this server allows (${maxDeadlineMs} ms); use a shorter deadline or a smaller request`,
    { reason: "MAX_DEADLINE_EXCEEDED" },
  );
}

/** A call the server's cap can end. */
export interface Cappable {
  /** The cap has passed: answer DEADLINE_EXCEEDED and stop the handler. */
  expired(): void;
}

/** A capped call's place in CappedCalls, kept by the call to take itself out. */
export interface CapEntry {
  readonly call: Cappable;
  readonly deadline: number;
  previous: CapEntry | undefined;
  next: CapEntry | undefined;
}

/**
 * The calls in flight that run under the server's cap rather than a deadline
 * of their own, ended by one shared timer. Most clients send no deadline, so
 * nearly every call is capped, and a timer per call (set, then cleared when
 * it answers within microseconds) cost about 3 µs of a one-stream call. A
 * capped call ends between its deadline and one sweep later; sweeps come
 * every twentieth of the cap (at most a second, at least 5 ms apart).
 *
 * A linked list, not a Map: every call has the same cap, so appending keeps
 * deadline order, and taking a call out allocates nothing. A Map churned by a
 * call's add and delete rehashes into new tables, and a stale table already
 * in old space keeps the calls it held alive through every scavenge until
 * the next full GC: they and their streams got promoted.
 */
export class CappedCalls {
  private first: CapEntry | undefined;
  private last: CapEntry | undefined;
  private readonly sweepEveryMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(capMs: number) {
    this.sweepEveryMs = Math.min(1_000, Math.max(5, Math.round(capMs / 20)));
  }

  add(call: Cappable, deadline: number): CapEntry {
    const entry: CapEntry = { call, deadline, previous: this.last, next: undefined };
    if (this.last === undefined) this.first = entry;
    else this.last.next = entry;
    this.last = entry;
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.sweepEveryMs);
      // Calls in flight keep the process alive by their sockets, not by this.
      this.timer.unref();
    }
    return entry;
  }

  /** Takes out an entry `add` returned, unless it is out already (swept). */
  delete(entry: CapEntry): void {
    const { previous, next } = entry;
    if (previous === undefined && this.first !== entry) return;
    if (previous === undefined) this.first = next;
    else previous.next = next;
    if (next === undefined) this.last = previous;
    else next.previous = previous;
    entry.previous = entry.next = undefined;
  }

  private sweep(): void {
    const now = Date.now();
    let entry = this.first;
    while (entry !== undefined && entry.deadline <= now) {
      this.delete(entry);
      entry.call.expired();
      entry = this.first;
    }
    if (this.first === undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
