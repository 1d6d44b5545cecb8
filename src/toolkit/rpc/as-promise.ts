/**
 * Runs `start` and returns its promise, with a synchronous throw turned into
 * a rejection: handlers, interceptors and transports may throw before their
 * first await, and every caller up the chain handles failures as rejections.
 */
export function asPromise<T>(start: () => Promise<T>): Promise<T> {
  try {
    return start();
  } catch (error) {
    return Promise.reject(error);
  }
}

/** `asPromise` for `fn(a, b)`, without the closure that would cost a hot path one allocation per call. */
export function applyAsPromise<A, B, T>(fn: (a: A, b: B) => Promise<T>, a: A, b: B): Promise<T> {
  try {
    return fn(a, b);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Runs `ok` or `failed` as `result` settles, on a branch of its own: the
 * caller goes on awaiting `result` itself, so observing a call (ending its
 * span, timing it) adds no turn of the microtask queue. That matters beyond
 * the turn: calls in flight move through the queue in step, and an extra
 * layer on 1 % of them put them out of step and cost every call about
 * 0.7 µs (docs/benchmarks.md, "A rare path with an extra microtask turn").
 */
export function whenSettled(result: Promise<unknown>, ok: () => void, failed: (error: unknown) => void): void {
  result.then(ok, failed);
}
