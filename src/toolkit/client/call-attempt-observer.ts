import type { Code } from "../rpc/code.js";

/** The request headers of one attempt, as it is about to send them: what an observer reads, and may add to. */
export interface AttemptHeaders {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}

/** One attempt of a call, as the channel sends it: the first, a retry or a hedge. */
export interface CallAttempt {
  /** The endpoint picked, e.g. `10.0.0.7:50051`; undefined when none could be (the attempt fails at once). */
  readonly endpoint: string | undefined;
  /** 1 for the first attempt, then 2, 3… (from `grpc-previous-rpc-attempts`). */
  readonly number: number;
  readonly headers: AttemptHeaders;
  /** True when it travels through a call tunnel (http2 client), not on an HTTP/2 stream of its own. */
  readonly tunneled?: boolean;
}

/** Told how an attempt ended. */
export type AttemptEnded = (code: Code, message: string) => void;

/**
 * Sees every attempt a grpc-js channel makes — retries and hedges happen
 * inside the channel, where client interceptors cannot see them — from the
 * channel's load balancing picker (see endpoint-ejection-policy.ts). Used for
 * a tracing span per attempt; knows nothing of tracing itself.
 */
export interface CallAttemptObserver {
  /**
   * Called as an attempt goes out, synchronously inside grpc-js: keep it
   * cheap. Headers set here are sent with this attempt only. Returns what
   * to call when the attempt ends, or undefined to not follow it. An attempt
   * grpc-js drops before it opens a stream (it picks again, e.g. when the
   * connection went down meanwhile, or the call ended first) is never
   * reported as ended; a transparent retry repeats the attempt's number.
   */
  attemptStarted(attempt: CallAttempt): AttemptEnded | undefined;
}
