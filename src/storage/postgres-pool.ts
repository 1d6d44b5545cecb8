import pg from "pg";

/** The pg pool type, so callers need not import the driver. */
export type PostgresPool = pg.Pool;

/** Tuning for createPostgresPool; the defaults suit one service process. */
export interface PostgresPoolOptions {
  /** Most connections held open. Default 10. */
  readonly max?: number;
  /** Told about errors on idle connections (the pool drops them and reconnects later). */
  readonly onIdleClientError?: (error: Error) => void;
}

const CONNECT_TIMEOUT_MS = 5_000;
const IDLE_TIMEOUT_MS = 30_000;
// No store query should take this long; a stuck one must fail rather than hold a connection.
const STATEMENT_TIMEOUT_MS = 10_000;

/** A pg.Pool with bounded size and timeouts, whose background errors cannot crash the process. */
export function createPostgresPool(url: string, options: PostgresPoolOptions = {}): PostgresPool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: "switchyard",
  });
  // An idle client losing its connection (server restart, failover) emits
  // 'error' on the pool; unhandled, Node would throw it and end the process.
  pool.on("error", (error) => options.onIdleClientError?.(error));
  return pool;
}
