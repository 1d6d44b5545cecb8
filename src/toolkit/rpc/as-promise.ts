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
