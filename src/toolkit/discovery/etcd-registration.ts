import { randomBytes } from "node:crypto";
import os from "node:os";
import type { Lease } from "etcd3";
import type { Logger } from "../log/logger.js";
import type { Registration } from "./discovery.js";
import { backoff, openEtcd } from "./etcd-client.js";

/** Where instances live in etcd unless told otherwise: `/switchyard/<service-name>/<instance-id>`. */
export const DEFAULT_ETCD_PREFIX = "switchyard";

/** How long deregistration waits for etcd before letting the lease expire instead. */
const DEREGISTER_TIMEOUT_MS = 2_000;

/** Options for registerInstance. */
export interface EtcdRegistrationOptions {
  /** etcd endpoints, `host:port`. */
  readonly endpoints: readonly string[];
  /** e.g. `user-service`. */
  readonly serviceName: string;
  /** What clients should connect to, `host:port`. */
  readonly address: string;
  /** Lease TTL: how long the entry outlives a crashed process. Default 10 s. */
  readonly ttlSeconds?: number;
  /** Default `switchyard`. */
  readonly prefix?: string;
  /** Default `<hostname>-<pid>-<random>`. */
  readonly instanceId?: string;
  readonly logger?: Logger;
}

/** The etcd key prefix under which a service's instances are registered (with the trailing slash). */
export function servicePrefix(prefix: string, serviceName: string): string {
  return `/${prefix.replace(/^\/+|\/+$/g, "")}/${serviceName}/`;
}

/** A fresh instance id, unique per process and call. */
export function newInstanceId(): string {
  return `${os.hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/**
 * Registers one instance in etcd: puts `/<prefix>/<service-name>/<instance-id>`
 * → address under a lease of `ttlSeconds`, kept alive while the process runs.
 * A crashed process stops the keep-alive and etcd deletes the key when the
 * lease expires. When the lease is lost (etcd restarted without it, or
 * unreachable for longer than the TTL) the same key is put again under a new
 * lease, retrying with backoff until etcd answers. Resolves once the first
 * put succeeded; rejects if etcd cannot be reached at all.
 */
export async function registerInstance(options: EtcdRegistrationOptions): Promise<Registration> {
  const ttlSeconds = options.ttlSeconds ?? 10;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new Error(`the lease TTL must be a whole number of seconds ≥ 1, got ${ttlSeconds}`);
  const { serviceName, address, logger } = options;
  const key = servicePrefix(options.prefix ?? DEFAULT_ETCD_PREFIX, serviceName) + (options.instanceId ?? newInstanceId());
  const client = await openEtcd(options.endpoints);
  const delay = backoff(100, 1_000);
  let lease: Lease | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  // One attempt: a new lease, the key put under it. Whatever ends this lease
  // later (keep-alive failure, etcd forgetting it) schedules the next attempt.
  const attempt = async (): Promise<void> => {
    const current = client.lease(ttlSeconds);
    lease = current;
    let registered = false;
    const lost = (reason: unknown): void => {
      if (stopped || lease !== current) return;
      lease = undefined;
      current.release();
      if (registered) logger?.warn({ serviceName, key, err: reason }, "etcd registration lost; registering again");
      scheduleRetry();
    };
    current.on("lost", lost);
    try {
      await current.put(key).value(address).exec();
    } catch (error) {
      lost(error);
      throw error;
    }
    registered = true;
    delay.reset();
  };
  const scheduleRetry = (): void => {
    if (stopped || retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      attempt().then(
        () => logger?.info({ serviceName, key, address }, "registered in etcd again"),
        (error: unknown) => logger?.debug({ serviceName, key, err: error }, "etcd registration attempt failed"),
      );
    }, delay.next());
  };

  try {
    await attempt();
  } catch (error) {
    stopped = true;
    clearTimeout(retryTimer);
    client.close();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`could not register ${serviceName} in etcd at ${options.endpoints.join(",")}: ${reason}`, { cause: error });
  }

  let deregistered: Promise<void> | undefined;
  return {
    serviceName,
    address,
    key,
    deregister() {
      deregistered ??= (async () => {
        stopped = true;
        clearTimeout(retryTimer);
        const current = lease;
        lease = undefined;
        let timer: NodeJS.Timeout | undefined;
        try {
          if (current) {
            // Revoking the lease deletes the key at once, for every watcher.
            await Promise.race([
              current.revoke(),
              new Promise<never>((_, reject) => {
                timer = setTimeout(() => reject(new Error(`etcd did not answer within ${DEREGISTER_TIMEOUT_MS} ms`)), DEREGISTER_TIMEOUT_MS);
              }),
            ]);
          }
        } catch (error) {
          logger?.warn({ serviceName, key, err: error }, "could not deregister from etcd; the entry expires with its lease");
        } finally {
          clearTimeout(timer);
          client.close();
        }
      })();
      return deregistered;
    },
  };
}
