import { whenSettled } from "../rpc/as-promise.js";
import { formatLabels } from "./prometheus-text.js";

/** What a timed store is, as labels on its figures. */
export interface StoreLabels {
  /** The service the store belongs to, e.g. `user`. */
  readonly service: string;
  /** The database behind it, e.g. `sqlite` or `postgres`. */
  readonly store: string;
}

/** A connection pool's state at one instant, as its driver reports it. */
export interface PoolFigures {
  /** Connections open, idle or in use. */
  readonly open: number;
  /** Open connections not in use. */
  readonly idle: number;
  /** Requests queued for a connection because all are in use. */
  readonly waiting: number;
  /** The most connections the pool opens. */
  readonly max: number;
}

/** Store latency and pool figures in the Prometheus text format, kept apart from the code they measure. */
export interface StoreMetrics {
  /**
   * A stand-in for `target` whose every method (own or inherited) is timed
   * into `switchyard_store_operation_seconds`, labelled with the method's
   * name and whether it resolved or threw. Other members read through.
   */
  instrument<T extends object>(target: T, labels: StoreLabels): T;
  /** Reports a pool's figures, read from `read` at every scrape (labels `store`, and `pool` when given). */
  observePool(labels: { readonly store: string; readonly pool?: string }, read: () => PoolFigures): void;
  /** The families in the Prometheus text format (0.0.4), each ending in a newline. */
  render(): string;
}

/**
 * Bounds of the operation histogram: from 100 µs (a SQLite read from the page
 * cache) to 10 s (the PostgreSQL statement timeout); an fsync'd write or a
 * network round trip falls in the middle.
 */
export const STORE_SECONDS_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** The two outcomes an operation has: it resolved, or it threw / rejected. */
const OUTCOMES = ["ok", "error"] as const;

/** One histogram series; plain numbers, so an operation costs no hashing. */
interface Series {
  readonly labels: string;
  /** Non-cumulative counts per bucket of STORE_SECONDS_BUCKETS, then one for +Inf. */
  readonly buckets: Float64Array;
  seconds: number;
  count: number;
}

interface Pool {
  readonly labels: string;
  readonly read: () => PoolFigures;
}

const OPERATION_SECONDS = "switchyard_store_operation_seconds";

const POOL_GAUGES: readonly { name: string; help: string; figure: keyof PoolFigures }[] = [
  { name: "switchyard_store_pool_open_connections", help: "Connections the store's pool holds open, idle or in use.", figure: "open" },
  { name: "switchyard_store_pool_idle_connections", help: "Open connections of the store's pool that no query is using.", figure: "idle" },
  { name: "switchyard_store_pool_max_connections", help: "The most connections the store's pool opens.", figure: "max" },
  {
    name: "switchyard_store_pool_waiting_requests",
    help: "Requests waiting for a connection of the store's pool because all are in use.",
    figure: "waiting",
  },
];

function observe(series: Series, started: number): void {
  const seconds = (performance.now() - started) / 1000;
  let bucket = 0;
  while (bucket < STORE_SECONDS_BUCKETS.length && seconds > (STORE_SECONDS_BUCKETS[bucket] ?? Infinity)) bucket++;
  series.buckets[bucket] = (series.buckets[bucket] ?? 0) + 1;
  series.seconds += seconds;
  series.count += 1;
}

/** The names of `target`'s methods, own and inherited (short of Object.prototype). */
function methodNames(target: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = target; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name !== "constructor" && typeof Reflect.get(target, name) === "function") names.add(name);
    }
  }
  return [...names].sort();
}

/**
 * Store metrics: `switchyard_store_operation_seconds{service,store,operation,outcome}`
 * and, per connection pool, `switchyard_store_pool_{open,idle,max}_connections`
 * and `switchyard_store_pool_waiting_requests`. Generic over what it times:
 * the composition root decides what is a store and wraps it, so domain and
 * store code never learn about Prometheus.
 */
export function createStoreMetrics(): StoreMetrics {
  const allSeries: Series[] = [];
  const pools: Pool[] = [];
  return {
    instrument<T extends object>(target: T, labels: StoreLabels): T {
      const wrapped = Object.create(target) as T;
      for (const operation of methodNames(target)) {
        const original = Reflect.get(target, operation) as (...args: unknown[]) => unknown;
        // Every outcome's series exists from the start, so a rate over it is 0 rather than absent.
        const [ok, failed] = OUTCOMES.map((outcome) => {
          const series: Series = {
            labels: formatLabels({ service: labels.service, store: labels.store, operation, outcome }),
            buckets: new Float64Array(STORE_SECONDS_BUCKETS.length + 1),
            seconds: 0,
            count: 0,
          };
          allSeries.push(series);
          return series;
        }) as [Series, Series];
        const timed = (...args: unknown[]): unknown => {
          const started = performance.now();
          let result: unknown;
          try {
            result = original.apply(target, args);
          } catch (error) {
            observe(failed, started);
            throw error;
          }
          if (!(result instanceof Promise)) {
            observe(ok, started);
            return result;
          }
          whenSettled(
            result,
            () => observe(ok, started),
            () => observe(failed, started),
          );
          return result;
        };
        Object.defineProperty(wrapped, operation, { value: timed, enumerable: true });
      }
      return wrapped;
    },

    observePool(labels, read) {
      pools.push({ labels: formatLabels({ store: labels.store, ...(labels.pool === undefined ? {} : { pool: labels.pool }) }), read });
    },

    render() {
      const lines = [
        `# HELP ${OPERATION_SECONDS} Time store operations took, by service, store, operation and outcome (ok, or error when it threw).`,
        `# TYPE ${OPERATION_SECONDS} histogram`,
      ];
      for (const series of allSeries) {
        let cumulative = 0;
        STORE_SECONDS_BUCKETS.forEach((bound, i) => {
          cumulative += series.buckets[i] ?? 0;
          lines.push(`${OPERATION_SECONDS}_bucket{${series.labels},le="${bound}"} ${cumulative}`);
        });
        lines.push(
          `${OPERATION_SECONDS}_bucket{${series.labels},le="+Inf"} ${series.count}`,
          `${OPERATION_SECONDS}_sum{${series.labels}} ${series.seconds}`,
          `${OPERATION_SECONDS}_count{${series.labels}} ${series.count}`,
        );
      }
      lines.push("");
      if (pools.length > 0) {
        const figures = pools.map((pool) => ({ labels: pool.labels, figures: pool.read() }));
        for (const gauge of POOL_GAUGES) {
          lines.push(`# HELP ${gauge.name} ${gauge.help}`, `# TYPE ${gauge.name} gauge`);
          for (const pool of figures) lines.push(`${gauge.name}{${pool.labels}} ${pool.figures[gauge.figure]}`);
          lines.push("");
        }
      }
      return lines.join("\n");
    },
  };
}
