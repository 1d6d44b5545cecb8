import { type Logger, traceFieldsOf } from "../log/logger.js";
import { Code } from "../rpc/code.js";
import { toCallerError } from "./escaped-error.js";
import type { ServerCall, ServerInterceptor } from "./server-interceptor.js";

/**
 * Writes one line per finished call: method, status code, duration, peer,
 * and the trace and span ids when tracing's interceptor runs outside this one.
 */
export function loggingInterceptor(logger: Logger): ServerInterceptor {
  // Not an async function: with info off, a call pays for no extra promise.
  return (call, next) => (logger.isLevelEnabled("info") ? logged(call, next) : next());

  async function logged(call: ServerCall, next: () => Promise<unknown>): Promise<unknown> {
    const started = performance.now();
    const finish = (code: Code): void => {
      logger.info(
        {
          method: `${call.service}/${call.method}`,
          code: Code[code],
          durationMs: Math.round((performance.now() - started) * 100) / 100,
          peer: call.context.peer,
          ...traceFieldsOf(call.context.traceParent),
        },
        "call finished",
      );
    };
    try {
      const response = await next();
      finish(Code.OK);
      return response;
    } catch (error) {
      finish(toCallerError(error).code);
      throw error;
    }
  }
}
