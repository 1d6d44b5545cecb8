import type { IncomingHttpHeaders } from "node:http2";
import { Code } from "../rpc/code.js";
import type { MethodDefinition, ServiceDefinition } from "../rpc/definition.js";

/** Retry settings (gRFC A6), applied only to methods the proto marks idempotent. */
export interface RetryOptions {
  /**
   * Attempts in all, the first included. Default 3: with round robin over
   * two or more endpoints, two retries get past a dead one, and a caller two
   * retrying hops up still hears of a dead dependency within a second.
   */
  readonly maxAttempts?: number;
  /** Default 50 ms (a retry waits a random time up to the backoff, gRFC A6). */
  readonly initialBackoffMs?: number;
  /** Default 500 ms. */
  readonly maxBackoffMs?: number;
  /** Default 2. */
  readonly backoffMultiplier?: number;
}

/** RetryOptions with every default applied. */
export type RetrySettings = Required<RetryOptions>;

export function retrySettings(options: RetryOptions): RetrySettings {
  return {
    maxAttempts: options.maxAttempts ?? 3,
    initialBackoffMs: options.initialBackoffMs ?? 50,
    maxBackoffMs: options.maxBackoffMs ?? 500,
    backoffMultiplier: options.backoffMultiplier ?? 2,
  };
}

/**
 * Hedging (gRFC A6) for reads: a copy of the call goes out after each
 * `delayMs` without an answer, up to `maxAttempts` in all; the first answer
 * wins and the others are cancelled. Only for methods the proto marks
 * NO_SIDE_EFFECTS. Spends the same retry budget as retries.
 */
export interface HedgingOptions {
  /** Method names as in the proto, e.g. `GetUser`. */
  readonly methods: readonly string[];
  /** Default 2. */
  readonly maxAttempts?: number;
  /** Default 100 ms. */
  readonly delayMs?: number;
}

/** HedgingOptions' numbers with their defaults applied. */
export type HedgingSettings = Required<Omit<HedgingOptions, "methods">>;

export function hedgingSettings(options: HedgingOptions): HedgingSettings {
  return { maxAttempts: options.maxAttempts ?? 2, delayMs: options.delayMs ?? 100 };
}

/**
 * The methods `hedging` names, found in `services`. Throws for a name that is
 * not a read (NO_SIDE_EFFECTS): a hedge runs the call twice.
 */
export function hedgedMethods(services: readonly ServiceDefinition[], hedging: HedgingOptions | undefined): MethodDefinition<unknown, unknown>[] {
  return (hedging?.methods ?? []).map((name) => {
    const method = services.flatMap((service) => Object.values(service.methods)).find((candidate) => candidate.name === name);
    if (method?.options.idempotencyLevel !== "NO_SIDE_EFFECTS") {
      throw new Error(`cannot hedge ${name}: only methods the proto marks NO_SIDE_EFFECTS may be hedged`);
    }
    return method;
  });
}

/**
 * The retry budget of every channel (gRFC A6 retryThrottling): every failed
 * attempt spends a token, every success earns a tenth of one back, and while
 * half the tokens are gone no call is retried (or hedged), so a dead
 * dependency gets no retry storm. 100 tokens let a burst of 50 failures — the
 * calls in flight to an instance that dies, a few hundred calls a second at
 * a slow moment — all be retried (40 tokens lost 74 of 2,100 calls of fault
 * scenario 2 at 300/s with a 250 ms median); sustained, retries stop once
 * more than about one call in eleven fails, whatever the size.
 */
export const RETRY_THROTTLE = { maxTokens: 100, tokenRatio: 0.1 } as const;

/** The statuses worth another attempt: the endpoint could not take the call. */
const RETRYABLE: ReadonlySet<Code> = new Set([Code.UNAVAILABLE]);

/** Whether a failed attempt's status is one the policy retries (and the throttle counts). */
export function isRetryableCode(code: Code): boolean {
  return RETRYABLE.has(code);
}

/**
 * How long to wait before attempt `attempt + 1` (gRFC A6): the server's
 * `grpc-retry-pushback-ms` when it sent one, else a random time up to the
 * exponential backoff. Undefined when the server asked not to retry (a
 * pushback that is not a non-negative whole number).
 */
export function retryDelayMs(settings: RetrySettings, attempt: number, trailers: IncomingHttpHeaders | undefined): number | undefined {
  const pushback = pushbackOf(trailers);
  if (pushback !== undefined) return pushback === "stop" ? undefined : pushback;
  const ceiling = Math.min(settings.initialBackoffMs * settings.backoffMultiplier ** (attempt - 1), settings.maxBackoffMs);
  return Math.random() * ceiling;
}

/**
 * The server's `grpc-retry-pushback-ms`: how long to wait before the next
 * attempt, "stop" when it asks for none (a value that is not a non-negative
 * whole number), undefined when it sent none.
 */
export function pushbackOf(trailers: IncomingHttpHeaders | undefined): number | "stop" | undefined {
  const pushback = trailers?.["grpc-retry-pushback-ms"];
  if (typeof pushback !== "string") return undefined;
  return /^\d+$/.test(pushback) ? Number(pushback) : "stop";
}

/** RETRY_THROTTLE's bookkeeping, for a client that retries by itself (grpc-js keeps its own). */
export class RetryThrottle {
  private tokens: number = RETRY_THROTTLE.maxTokens;
  private readonly maxTokens: number = RETRY_THROTTLE.maxTokens;
  private readonly tokenRatio: number = RETRY_THROTTLE.tokenRatio;

  succeeded(): void {
    if (this.tokens < this.maxTokens) this.tokens = Math.min(this.maxTokens, this.tokens + this.tokenRatio);
  }

  failed(): void {
    this.tokens = Math.max(0, this.tokens - 1);
  }

  get allowsRetry(): boolean {
    return this.tokens > this.maxTokens / 2;
  }
}
