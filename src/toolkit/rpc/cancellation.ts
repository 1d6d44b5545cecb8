/**
 * Whether a call has been given up (cancelled, past its deadline, the server
 * shutting down), watched without an AbortSignal. Making an AbortController
 * costs about 3.7 µs on Node 20, as much as the rest of an in-process call,
 * and most calls end without being given up: engines and transports pass
 * this along and make a signal only for the code that reads one.
 */
export interface Cancellation {
  /** Why the call was given up; undefined while it goes on. */
  readonly abortReason: unknown;
  /** Calls `listener` once when the call is given up; never when it already was (read abortReason first). */
  addAbortListener(listener: () => void): void;
  removeAbortListener(listener: () => void): void;
}

/** A Cancellation that its owner aborts, with an AbortSignal made on first use. */
export class CancellationSource implements Cancellation {
  private reason: unknown;
  private controller: AbortController | undefined;
  private listeners: (() => void)[] | undefined;

  get abortReason(): unknown {
    return this.reason;
  }

  /** Aborts with the same reason as this source. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  addAbortListener(listener: () => void): void {
    (this.listeners ??= []).push(listener);
  }

  removeAbortListener(listener: () => void): void {
    const index = this.listeners?.indexOf(listener) ?? -1;
    if (index >= 0) this.listeners?.splice(index, 1);
  }

  /** Gives the call up (the first reason wins) and tells the listeners. */
  abort(reason: unknown): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
  }
}

/** An AbortSignal seen as a Cancellation. */
export class SignalCancellation implements Cancellation {
  constructor(readonly signal: AbortSignal) {}

  get abortReason(): unknown {
    return this.signal.aborted ? this.signal.reason : undefined;
  }

  addAbortListener(listener: () => void): void {
    this.signal.addEventListener("abort", listener, { once: true });
  }

  removeAbortListener(listener: () => void): void {
    this.signal.removeEventListener("abort", listener);
  }
}
