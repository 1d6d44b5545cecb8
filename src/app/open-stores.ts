import path from "node:path";
import type { OrderStore } from "../services/order/domain/order-store.js";
import { createMemoryOrderStore } from "../services/order/store/memory-order-store.js";
import type { UserStore } from "../services/user/domain/user-store.js";
import { createMemoryUserStore } from "../services/user/store/memory-user-store.js";
import type { SqliteDatabase } from "../storage/sqlite-database.js";

/** A service whose store openStores can open. */
export type StoredService = "user" | "order";

/** Where to keep data and for which services. */
export interface OpenStoresOptions {
  /** Directory for the SQLite files; used when `databaseUrl` is absent. */
  readonly dataDir: string;
  /** A postgres:// or postgresql:// URL; when set, PostgreSQL is used instead of SQLite. */
  readonly databaseUrl?: string;
  /** Keep data in this process's memory instead (lost at exit): for tests, demos and benchmarks. */
  readonly memory?: boolean;
  readonly services: readonly StoredService[];
  /** Told about connection errors that happen between queries (PostgreSQL only). */
  readonly onBackgroundError?: (error: Error) => void;
}

/** A connection pool's state as its driver reports it (pg.Pool's counts, and its size). */
export interface ConnectionPoolState {
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
  readonly max: number;
}

/** The opened stores, one per requested service, and how to release them. */
export interface Stores {
  readonly users?: UserStore;
  readonly orders?: OrderStore;
  /** The database behind them, as a metrics label. */
  readonly kind: "sqlite" | "postgres" | "memory";
  /** The shared connection pool's state now; absent for SQLite, which has none. */
  readonly pool?: () => ConnectionPoolState;
  /** Where the data lives, safe to log: never contains a password. */
  readonly describe: string;
  close(): Promise<void>;
}

/** Opens (and migrates) the stores the given services need: SQLite, PostgreSQL or memory. */
export async function openStores(options: OpenStoresOptions): Promise<Stores> {
  const services = new Set(options.services);
  if (options.memory === true) {
    if (options.databaseUrl !== undefined && options.databaseUrl !== "") throw new Error("choose one: memory or a database URL");
    return {
      users: services.has("user") ? createMemoryUserStore() : undefined,
      orders: services.has("order") ? createMemoryOrderStore() : undefined,
      kind: "memory",
      describe: "memory (lost at exit)",
      close: async () => undefined,
    };
  }
  if (options.databaseUrl === undefined || options.databaseUrl === "") return openSqliteStores(options.dataDir, services);
  if (!/^postgres(ql)?:\/\//.test(options.databaseUrl)) {
    // The URL is not echoed back: it may hold a password.
    throw new Error("database URL must start with postgres:// or postgresql://");
  }
  return openPostgresStores(options.databaseUrl, services, options.onBackgroundError);
}

// Each database's driver and stores are loaded only when that database is used.
async function openSqliteStores(dataDir: string, services: ReadonlySet<StoredService>): Promise<Stores> {
  const [{ openSqliteDatabase }, { openSqliteUserStore }, { openSqliteOrderStore }] = await Promise.all([
    import("../storage/sqlite-database.js"),
    import("../services/user/store/sqlite-user-store.js"),
    import("../services/order/store/sqlite-order-store.js"),
  ]);
  const opened: SqliteDatabase[] = [];
  // One file per service, so a split deployment never has two processes writing one file.
  const open = (service: StoredService): SqliteDatabase => {
    const db = openSqliteDatabase(path.join(dataDir, `${service}.sqlite`));
    opened.push(db);
    return db;
  };
  const closeAll = async (): Promise<void> => {
    for (const db of opened.splice(0)) db.close();
  };
  try {
    return {
      users: services.has("user") ? openSqliteUserStore(open("user")) : undefined,
      orders: services.has("order") ? openSqliteOrderStore(open("order")) : undefined,
      kind: "sqlite",
      describe: `sqlite:${dataDir}`,
      close: closeAll,
    };
  } catch (error) {
    void closeAll();
    throw error;
  }
}

async function openPostgresStores(
  url: string,
  services: ReadonlySet<StoredService>,
  onBackgroundError: ((error: Error) => void) | undefined,
): Promise<Stores> {
  const [{ createPostgresPool }, { openPostgresUserStore }, { openPostgresOrderStore }] = await Promise.all([
    import("../storage/postgres-pool.js"),
    import("../services/user/store/postgres-user-store.js"),
    import("../services/order/store/postgres-order-store.js"),
  ]);
  // One pool for both stores: a combined process needs no more connections than a split one.
  const pool = createPostgresPool(url, { onIdleClientError: onBackgroundError });
  try {
    // In sequence: both migrations take the same lock anyway.
    const users = services.has("user") ? await openPostgresUserStore(pool) : undefined;
    const orders = services.has("order") ? await openPostgresOrderStore(pool) : undefined;
    let ended: Promise<void> | undefined;
    // pg throws when a pool is ended twice; closing twice should be harmless.
    const close = (): Promise<void> => (ended ??= pool.end());
    const max = pool.options.max;
    const state = (): ConnectionPoolState => ({
      totalCount: pool.totalCount,
      idleCount: pool.idleCount,
      waitingCount: pool.waitingCount,
      max,
    });
    return { users, orders, kind: "postgres", pool: state, describe: describePostgres(url), close };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
}

// Host and database only: user, password and query parameters stay out of logs.
function describePostgres(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "postgres";
  }
}
