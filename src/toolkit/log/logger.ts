import { pino, type Logger } from "pino";

export type { Logger };

/** Options for createLogger. */
export interface LoggerOptions {
  /** Minimum level written. Default `info`. */
  readonly level?: string;
  /** Where lines go. Default: standard error, so stdout stays free for command output. */
  readonly destination?: NodeJS.WritableStream;
}

/** A structured JSON logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    { level: options.level ?? "info", base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    options.destination ?? pino.destination(2),
  );
}

/** A logger that writes nothing, for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
