import pg from "pg";
import { StorageUnavailableError } from "./storage-unavailable.js";

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

// SQLSTATEs that blame the server rather than the query: class 08 (connection
// exception) plus admin/crash shutdown, cannot connect now, too many
// connections, and query_canceled (we cancel nothing but by statement_timeout).
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300", "57014"]);
const NETWORK_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
// pg's own errors, which carry no code: the pool found no connection in time, or one dropped mid-query.
const DRIVER_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|connection error/i;

/** True when `error` says PostgreSQL (or the way to it) failed, not the query. */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code: unknown = Reflect.get(error, "code");
  if (typeof code === "string") return code.startsWith("08") || UNAVAILABLE_SQLSTATES.has(code) || NETWORK_ERRNOS.has(code);
  return DRIVER_MESSAGES.test(error.message);
}

/** `pool.query`, with a failure of PostgreSQL itself turned into a StorageUnavailableError (its cause kept). */
export async function queryPostgres<R extends pg.QueryResultRow>(pool: PostgresPool, query: pg.QueryConfig): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(query);
  } catch (error) {
    if (!isUnavailable(error)) throw error;
    throw new StorageUnavailableError(`PostgreSQL cannot serve queries right now: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
