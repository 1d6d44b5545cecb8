import type { Code } from "./code.js";

/**
 * What an observer is told of one method's calls, on either side: each start,
 * and each end with the status its caller got. For what only counts, such as
 * metrics: told from promises the call makes anyway, where an interceptor
 * would add one to every call (about 0.4 µs).
 */
export interface MethodObserver {
  /** A call starts; what it returns (say, the time) comes back to `finished`. */
  started(): number;
  /** The call ended with `code`. */
  finished(started: number, code: Code): void;
}

/** Tells `observer` of a call refused before it went out, with the status the caller gets. */
export function observeRefused(observer: MethodObserver | undefined, code: Code): void {
  observer?.finished(observer.started(), code);
}
