/**
 * A database could not serve a query right now: unreachable, restarting, out
 * of connections, no pooled connection free in time, or a statement past its
 * timeout. Transient: the same query may succeed when retried later. Kept
 * apart from the drivers, so that code mapping it to a status loads none.
 */
export class StorageUnavailableError extends Error {
  override readonly name = "StorageUnavailableError";
}
