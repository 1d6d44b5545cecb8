import * as grpc from "@grpc/grpc-js";
import { ClientError } from "../rpc/client-error.js";
import { Code } from "../rpc/code.js";
import { isIdempotent, type ServiceDefinition } from "../rpc/definition.js";
import { decodeStatusDetails, STATUS_DETAILS_KEY } from "../rpc/status-details.js";
import { installDiscoveryResolvers } from "../discovery/grpc-resolver.js";
import type { Transport } from "./transport.js";

/** Retry settings (gRFC A6), applied only to methods the proto marks idempotent. */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 4. */
  readonly maxAttempts?: number;
  /** Default 100 ms. */
  readonly initialBackoffMs?: number;
  /** Default 1000 ms. */
  readonly maxBackoffMs?: number;
  /** Default 2. */
  readonly backoffMultiplier?: number;
}

/** Options for createGrpcTransport. */
export interface GrpcTransportOptions {
  /** A gRPC target, e.g. `localhost:50051` or `dns:///users.internal:443`. */
  readonly target: string;
  /** The services called over this channel: their idempotent methods get retries. */
  readonly services: readonly ServiceDefinition[];
  /** Default: plaintext. */
  readonly credentials?: grpc.ChannelCredentials;
  /** Extra channel options, e.g. `grpc.ssl_target_name_override` from loadClientTls. */
  readonly channelOptions?: grpc.ChannelOptions;
  /** `false` turns retries off. Default: see RetryOptions. */
  readonly retry?: RetryOptions | false;
}

/**
 * One @grpc/grpc-js channel to one target, shared by every call made through
 * it. Retries, backoff, pushback and the retry throttle are grpc-js's own
 * implementation of gRFC A6, configured from the proto's idempotency levels.
 */
export function createGrpcTransport(options: GrpcTransportOptions): Transport {
  // `etcd:///user-service` and `static:///a:1,b:2` targets, besides grpc-js's own `dns:`, `ipv4:`, `unix:`.
  installDiscoveryResolvers();
  const channel = new grpc.Client(options.target, options.credentials ?? grpc.credentials.createInsecure(), {
    ...options.channelOptions,
    "grpc.service_config": JSON.stringify(serviceConfig(options.services, options.retry ?? {})),
    // grpc-go servers reject pings more often than every 5 minutes (too_many_pings).
    "grpc.keepalive_time_ms": 300_000,
    "grpc.keepalive_timeout_ms": 20_000,
  });
  return {
    unary(service, method, request, callOptions) {
      const path = `/${service.fullName}/${method.name}`;
      const metadata = new grpc.Metadata();
      for (const [key, value] of Object.entries(callOptions.metadata ?? {})) {
        metadata.set(key, typeof value === "string" ? value : Buffer.from(value));
      }
      return new Promise((resolve, reject) => {
        const signal = callOptions.signal;
        if (signal?.aborted) {
          reject(new ClientError(path, Code.CANCELLED, `the call to ${path} was cancelled before it started`));
          return;
        }
        const onAbort = (): void => call.cancel();
        const call = channel.makeUnaryRequest(
          path,
          (message: unknown) => Buffer.from(method.requestType.encode(message as never).finish()),
          (bytes: Buffer) => method.responseType.decode(bytes),
          request,
          metadata,
          { deadline: new Date(callOptions.deadline) },
          (error, response) => {
            signal?.removeEventListener("abort", onAbort);
            if (error) reject(toClientError(path, error));
            else resolve(response as Awaited<ReturnType<typeof method.responseType.decode>>);
          },
        );
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    close: () => channel.close(),
  };
}

function toClientError(path: string, error: grpc.ServiceError): ClientError {
  const code = error.code as number as Code;
  const trailer = error.metadata?.get(STATUS_DETAILS_KEY)[0];
  const details = trailer instanceof Buffer ? decodeStatusDetails(trailer, code) : undefined;
  return new ClientError(path, code, error.details, { ...details, cause: error });
}

function serviceConfig(services: readonly ServiceDefinition[], retry: RetryOptions | false): object {
  const idempotent = services.flatMap((service) =>
    Object.values(service.methods)
      .filter(isIdempotent)
      .map((method) => ({ service: service.fullName, method: method.name })),
  );
  // Every target's endpoints (from etcd, a static list or DNS) share the
  // calls round-robin, one connection per endpoint; a failing endpoint is
  // skipped until it reconnects.
  const loadBalancingConfig = [{ round_robin: {} }];
  if (retry === false || idempotent.length === 0) return { loadBalancingConfig };
  return {
    loadBalancingConfig,
    methodConfig: [
      {
        name: idempotent,
        retryPolicy: {
          maxAttempts: retry.maxAttempts ?? 4,
          initialBackoff: `${(retry.initialBackoffMs ?? 100) / 1000}s`,
          maxBackoff: `${(retry.maxBackoffMs ?? 1000) / 1000}s`,
          backoffMultiplier: retry.backoffMultiplier ?? 2,
          retryableStatusCodes: ["UNAVAILABLE"],
        },
      },
    ],
    // A retry budget: when more than half the tokens are spent by failures,
    // retries stop, so a dead dependency does not get a retry storm.
    retryThrottling: { maxTokens: 10, tokenRatio: 0.1 },
  };
}
