import type { Etcd3 } from "etcd3";

/** How long one etcd request (not a watch or keep-alive stream) may take. */
const REQUEST_TIMEOUT_MS = 2_000;

/**
 * Opens an etcd v3 client on `endpoints` (`host:port`), tuned for discovery:
 * requests have a deadline, a failing endpoint is retried after 500 ms rather
 * than etcd3's default 5 s (re-registration after an etcd restart must take
 * seconds, not more), and gRPC reconnects within a second once etcd is back.
 * etcd3 is loaded on first use: processes that do not use etcd never load it.
 */
export async function openEtcd(endpoints: readonly string[]): Promise<Etcd3> {
  const [{ Etcd3: Client, isRecoverableError }, cockatiel] = await Promise.all([import("etcd3"), import("cockatiel")]);
  return new Client({
    hosts: [...endpoints],
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + REQUEST_TIMEOUT_MS }),
    grpcOptions: {
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1_000,
    },
    faultHandling: {
      host: () =>
        cockatiel.circuitBreaker(cockatiel.handleWhen(isRecoverableError), {
          halfOpenAfter: 500,
          breaker: new cockatiel.ConsecutiveBreaker(3),
        }),
      global: cockatiel.retry(cockatiel.handleWhen(isRecoverableError), { maxAttempts: 1 }),
    },
  });
}

/** Parses `etcd://host:port[,host:port…]` (a registry URL) into etcd endpoints. */
export function parseEtcdUrl(url: string): string[] {
  const match = /^etcd:\/\/([^/]+)\/?$/.exec(url);
  const endpoints = match?.[1]?.split(",").map((endpoint) => endpoint.trim()) ?? [];
  if (endpoints.length === 0 || endpoints.some((endpoint) => !/^[^:\s]+:\d+$|^\[[^\]]+\]:\d+$/.test(endpoint))) {
    throw new Error(`expected a registry such as etcd://127.0.0.1:2379 (or etcd://host1:2379,host2:2379), got "${url}"`);
  }
  return endpoints;
}

/** A delay that grows ×2 from `initialMs` to `maxMs`, with ±20 % jitter so that many clients do not retry in step. */
export function backoff(initialMs: number, maxMs: number): { next(): number; reset(): void } {
  let current = initialMs;
  return {
    next() {
      const delay = current * (0.8 + Math.random() * 0.4);
      current = Math.min(current * 2, maxMs);
      return Math.round(delay);
    },
    reset() {
      current = initialMs;
    },
  };
}
