import * as grpc from "@grpc/grpc-js";
import { ClientError } from "../rpc/client-error.js";
import { Code } from "../rpc/code.js";
import { isIdempotent, type ServiceDefinition } from "../rpc/definition.js";
import { decodeStatusDetails, STATUS_DETAILS_KEY } from "../rpc/status-details.js";
import { installDiscoveryResolvers } from "../discovery/grpc-resolver.js";
import type { CallAttemptObserver } from "./call-attempt-observer.js";
import { ejectionSettings, type OutlierDetectionOptions } from "./endpoint-ejection.js";
import { CALL_ATTEMPT_OBSERVER_OPTION, endpointEjectionConfig, installEndpointEjectionPolicy } from "./endpoint-ejection-policy.js";
import { hedgedMethods, hedgingSettings, RETRY_THROTTLE, retrySettings, type HedgingOptions, type RetryOptions } from "./retry-policy.js";
import type { Transport } from "./transport.js";

export type { OutlierDetectionOptions } from "./endpoint-ejection.js";
export type { HedgingOptions, RetryOptions } from "./retry-policy.js";

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
  /**
   * Outlier detection: ejects an endpoint whose attempts fail as an endpoint
   * would (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL…, never NOT_FOUND and the
   * like). `false` turns it off (plain round robin). Default: see OutlierDetectionOptions.
   */
  readonly outlierDetection?: OutlierDetectionOptions | false;
  /** Hedged reads. Default: none (no method is hedged). */
  readonly hedging?: HedgingOptions;
  /**
   * Told of every attempt the channel makes, retries and hedges included
   * (e.g. Tracing's `attemptObserver`, a span per attempt). Default: none, at no cost.
   */
  readonly attemptObserver?: CallAttemptObserver;
}

/**
 * One @grpc/grpc-js channel to one target, shared by every call made through
 * it. Retries, backoff, pushback and the retry throttle are grpc-js's own
 * implementation of gRFC A6, configured from the proto's idempotency levels.
 */
export function createGrpcTransport(options: GrpcTransportOptions): Transport {
  // `etcd:///user-service` and `static:///a:1,b:2` targets, besides grpc-js's own `dns:`, `ipv4:`, `unix:`.
  installDiscoveryResolvers();
  installEndpointEjectionPolicy();
  const channel = new grpc.Client(options.target, options.credentials ?? grpc.credentials.createInsecure(), {
    ...options.channelOptions,
    ...(options.attemptObserver === undefined ? {} : { [CALL_ATTEMPT_OBSERVER_OPTION]: options.attemptObserver }),
    "grpc.service_config": JSON.stringify(serviceConfig(options)),
    // grpc-go servers reject pings more often than every 5 minutes (too_many_pings).
    "grpc.keepalive_time_ms": 300_000,
    "grpc.keepalive_timeout_ms": 20_000,
  });
  return {
    unary(service, method, request, callOptions) {
      const path = `/${service.fullName}/${method.name}`;
      const { observer } = callOptions;
      const started = observer === undefined ? 0 : observer.started();
      return new Promise((resolve, reject) => {
        const cancellation = callOptions.cancellation;
        if (cancellation !== undefined && cancellation.abortReason !== undefined) {
          observer?.finished(started, Code.CANCELLED);
          reject(new ClientError(path, Code.CANCELLED, `the call to ${path} was cancelled before it started`));
          return;
        }
        const onAbort = (): void => call.cancel();
        let call: grpc.ClientUnaryCall;
        try {
          const metadata = new grpc.Metadata();
          for (const [key, value] of Object.entries(callOptions.metadata ?? {})) {
            metadata.set(key, typeof value === "string" ? value : Buffer.from(value));
          }
          call = withoutStackTraces(() =>
            channel.makeUnaryRequest(
              path,
              (message: unknown) => Buffer.from(method.requestType.encode(message as never).finish()),
              (bytes: Buffer) => method.responseType.decode(bytes),
              request,
              metadata,
              { deadline: new Date(callOptions.deadline) },
              (error, response) => {
                cancellation?.removeAbortListener(onAbort);
                if (error) {
                  const clientError = toClientError(path, error);
                  observer?.finished(started, clientError.code);
                  reject(clientError);
                } else {
                  observer?.finished(started, Code.OK);
                  resolve(response as Awaited<ReturnType<typeof method.responseType.decode>>);
                }
              },
            ),
          );
        } catch (error) {
          // grpc-js refused the call (metadata it cannot send, a request it cannot serialize): a failure with no status.
          observer?.finished(started, Code.UNKNOWN);
          throw error;
        }
        cancellation?.addAbortListener(onAbort);
      });
    },
    close: () => channel.close(),
  };
}

/**
 * Runs `start` capturing no stack frames in the errors made meanwhile.
 * grpc-js records the caller's stack (`new Error()`) on every call for its
 * own error messages, which we replace with a ClientError: that capture was
 * a tenth of the channel's CPU per call. Synchronous, and restored at once.
 */
function withoutStackTraces<T>(start: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return start();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function toClientError(path: string, error: grpc.ServiceError): ClientError {
  const code = error.code as number as Code;
  const trailer = error.metadata?.get(STATUS_DETAILS_KEY)[0];
  const details = trailer instanceof Buffer ? decodeStatusDetails(trailer, code) : undefined;
  return new ClientError(path, code, error.details, { ...details, cause: error });
}

/** The channel's service config: load balancing, then retries or hedging per method, and the retry budget. */
export function serviceConfig(
  options: Pick<GrpcTransportOptions, "services" | "retry" | "outlierDetection" | "hedging" | "attemptObserver">,
): object {
  const retry = retrySettings(options.retry === false ? {} : (options.retry ?? {}));
  const hedged = new Set(hedgedMethods(options.services, options.hedging).map((method) => method.name));
  const idempotent = options.services.flatMap((service) =>
    Object.values(service.methods)
      .filter(isIdempotent)
      .map((method) => ({ service: service.fullName, method: method.name })),
  );
  // Every target's endpoints (from etcd, a static list or DNS) share the
  // calls round-robin, one connection per endpoint; a failing endpoint is
  // skipped until it reconnects, and one whose attempts fail as an endpoint
  // (or get no answer at all) is ejected and probed back later. The
  // endpoint_ejection policy is also where attempts are observed, so it stays
  // (ejecting nothing) when outlier detection is off but an observer is set.
  const ejection = options.outlierDetection === false ? undefined : ejectionSettings(options.outlierDetection);
  const loadBalancingConfig = [
    ejection === undefined && options.attemptObserver === undefined
      ? { round_robin: {} }
      : endpointEjectionConfig(ejection === undefined ? {} : { ejection }),
  ];
  const methodConfig: object[] = [];
  const retried = idempotent.filter((method) => !hedged.has(method.method));
  if (options.retry !== false && retried.length > 0) {
    methodConfig.push({
      name: retried.map(({ service, method }) => ({ service, method })),
      retryPolicy: {
        maxAttempts: retry.maxAttempts,
        initialBackoff: seconds(retry.initialBackoffMs),
        maxBackoff: seconds(retry.maxBackoffMs),
        backoffMultiplier: retry.backoffMultiplier,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    });
  }
  if (options.hedging !== undefined && hedged.size > 0) {
    const hedging = hedgingSettings(options.hedging);
    methodConfig.push({
      name: idempotent.filter((method) => hedged.has(method.method)).map(({ service, method }) => ({ service, method })),
      hedgingPolicy: {
        maxAttempts: hedging.maxAttempts,
        hedgingDelay: seconds(hedging.delayMs),
        nonFatalStatusCodes: ["UNAVAILABLE"],
      },
    });
  }
  if (methodConfig.length === 0) return { loadBalancingConfig };
  return {
    loadBalancingConfig,
    methodConfig,
    retryThrottling: RETRY_THROTTLE,
  };
}

/** A service-config duration string, e.g. `0.1s`. */
function seconds(ms: number): string {
  return `${ms / 1000}s`;
}
