import type { CallContext } from "../rpc/call-context.js";
import { Code } from "../rpc/code.js";
import { RpcError } from "../rpc/rpc-error.js";
import type { ServerInterceptor } from "./server-interceptor.js";

/**
 * Caps how long any call may run on this server: a call without a deadline,
 * or with one later than `maxDeadlineMs` from now, gets that much. The
 * handler's context (and the deadline of its outbound calls) carries the
 * shorter deadline, its signal aborts when it passes, and the caller gets
 * DEADLINE_EXCEEDED then even if the handler does not stop. Calls with an
 * earlier deadline pass untouched, at no cost.
 */
export function deadlineCapInterceptor(maxDeadlineMs: number): ServerInterceptor {
  if (!(maxDeadlineMs > 0)) throw new Error(`the maximum deadline must be positive, not ${maxDeadlineMs}`);
  return (call, next) => {
    const cap = Date.now() + maxDeadlineMs;
    const inbound = call.context;
    if (inbound.deadline !== undefined && inbound.deadline <= cap) return next();

    const controller = new AbortController();
    const onAbort = (): void => controller.abort(inbound.signal.reason);
    if (inbound.signal.aborted) onAbort();
    else inbound.signal.addEventListener("abort", onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new RpcError(
          Code.DEADLINE_EXCEEDED,
          `the call took longer than this server allows (${maxDeadlineMs} ms); use a shorter deadline or a smaller request`,
          { reason: "MAX_DEADLINE_EXCEEDED" },
        );
        controller.abort(error);
        reject(error);
      }, maxDeadlineMs);
    });
    const context: CallContext = { ...inbound, deadline: cap, signal: controller.signal };
    return Promise.race([next({ ...call, context }), expired]).finally(() => {
      clearTimeout(timer);
      inbound.signal.removeEventListener("abort", onAbort);
    });
  };
}
