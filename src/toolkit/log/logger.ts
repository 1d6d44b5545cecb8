import { createRequire } from "node:module";
import { pino, type Logger } from "pino";
import type { CallContext } from "../rpc/call-context.js";
import { parseTraceParent } from "../rpc/trace-parent.js";

export type { Logger };

/** Options for createLogger. */
export interface LoggerOptions {
  /** Minimum level written. Default `info`. */
  readonly level?: string;
  /**
   * `json`: one JSON object per line, for log collectors. `pretty`: coloured
   * lines for a person at a terminal. Default `json`.
   */
  readonly format?: "json" | "pretty";
  /** Where JSON lines go instead of standard error (tests read them here). */
  readonly destination?: NodeJS.WritableStream;
}

/**
 * A structured logger writing to standard error (stdout stays free for
 * command output). Lines about a call carry its `trace_id` and `span_id`
 * (see traceFieldsOf), so logs and traces join up.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination =
    options.format === "pretty"
      ? loadPretty()({ destination: 2, sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" })
      : (options.destination ?? pino.destination(2));
  return pino(
    { level: options.level ?? "info", base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    destination,
  );
}

/** pino-pretty, loaded only for a terminal: a server writing JSON never needs its thirty modules. */
function loadPretty(): typeof import("pino-pretty") {
  return createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty");
}

/** A logger that writes nothing, for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * A call's trace and span ids under the OpenTelemetry log field names, from
 * its W3C `traceparent` (`00-<trace id>-<span id>-<flags>`); nothing for a
 * call that carries no (valid) trace.
 */
export function traceFieldsOf(traceParent: string | undefined): { trace_id?: string; span_id?: string } {
  const parsed = parseTraceParent(traceParent);
  return parsed === undefined ? {} : { trace_id: parsed.traceId, span_id: parsed.spanId };
}

/**
 * A logger for code that runs inside a call (a handler, a store it calls):
 * every line it writes carries the call's `trace_id` and `span_id`. Without
 * AsyncLocalStorage (which costs a fifth of the throughput, see CallContext)
 * a logger cannot find the call by itself; the context is passed, as the
 * parent of outbound calls is.
 *
 * @example
 *   const log = callLogger(logger, context);
 *   log.warn({ userId }, "user has no email on file");
 */
export function callLogger(logger: Logger, context: CallContext): Logger {
  return logger.child(traceFieldsOf(context.traceParent));
}
