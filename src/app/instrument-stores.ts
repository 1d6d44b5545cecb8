import type { StoreMetrics } from "../toolkit/telemetry/store-metrics.js";
import type { Stores } from "./open-stores.js";

/**
 * The same stores with every port operation timed and the connection pool
 * reported through `metrics`. Done here, where the stores are wired, so that
 * domain and store code never see Prometheus; without metrics the stores are
 * used as opened, at no cost.
 */
export function instrumentStores(stores: Stores, metrics: StoreMetrics | undefined): Stores {
  if (metrics === undefined) return stores;
  const store = stores.kind;
  const pool = stores.pool;
  if (pool !== undefined) {
    metrics.observePool({ store }, () => {
      const state = pool();
      return { open: state.totalCount, idle: state.idleCount, waiting: state.waitingCount, max: state.max };
    });
  }
  return {
    ...stores,
    ...(stores.users === undefined ? {} : { users: metrics.instrument(stores.users, { service: "user", store }) }),
    ...(stores.orders === undefined ? {} : { orders: metrics.instrument(stores.orders, { service: "order", store }) }),
  };
}
