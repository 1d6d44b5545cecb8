import { isSpanContextValid, trace } from "@opentelemetry/api";
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

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
 * command output). Every line written inside a traced call carries the
 * call's `trace_id` and `span_id`, so logs and traces join up.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination =
    options.format === "pretty"
      ? pretty({ destination: 2, sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" })
      : (options.destination ?? pino.destination(2));
  return pino(
    { level: options.level ?? "info", base: undefined, timestamp: pino.stdTimeFunctions.isoTime, mixin: traceFields },
    destination,
  );
}

/** A logger that writes nothing, for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/** The active span's ids under the OpenTelemetry log field names; nothing outside a traced call. */
function traceFields(): { trace_id?: string; span_id?: string } {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}
