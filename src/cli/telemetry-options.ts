import { type Command, InvalidArgumentError } from "commander";

/** Telemetry flags of `serve`. */
export interface ServeTelemetryFlags {
  otlpEndpoint?: string;
  traceSampleRatio: number;
  metricsPort?: number;
}

/** Help texts of the telemetry flags. */
export const SERVE_TELEMETRY_HELP = {
  otlpEndpoint:
    "export traces over OTLP/HTTP (protobuf) to this endpoint, e.g. http://localhost:4318 (default: $OTEL_EXPORTER_OTLP_ENDPOINT; no tracing when neither is set)",
  traceSampleRatio: "fraction of new traces recorded, 0 to 1; a caller's sampled trace is always followed",
  metricsPort: "serve Prometheus metrics at http://<host>:<port>/metrics (default: no metrics endpoint)",
} as const;

/** Accepts an http:// or https:// URL. */
export function parseOtlpEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("expected a URL such as http://localhost:4318");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError("expected an http:// or https:// URL (OTLP over HTTP), such as http://localhost:4318");
  }
  return value;
}

/** Accepts a number from 0 to 1. */
export function parseSampleRatio(value: string): number {
  const ratio = Number(value);
  if (value.trim() === "" || !(ratio >= 0 && ratio <= 1)) throw new InvalidArgumentError("expected a number from 0 to 1, e.g. 0.01");
  return ratio;
}

/**
 * The telemetry options of startSwitchyard from the flags, with the standard
 * OTEL_EXPORTER_OTLP_ENDPOINT as the endpoint's default (read here, at the
 * entry point only). Exits with a usage error on a bad value.
 */
export function serveTelemetryOf(
  flags: ServeTelemetryFlags,
  command: Command,
  env: NodeJS.ProcessEnv = process.env,
): { otlpEndpoint?: string; traceSampleRatio: number; metricsPort?: number } {
  let otlpEndpoint = flags.otlpEndpoint;
  const fromEnv = env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  if (otlpEndpoint === undefined && fromEnv !== undefined && fromEnv !== "") {
    try {
      otlpEndpoint = parseOtlpEndpoint(fromEnv);
    } catch (error) {
      command.error(`error: OTEL_EXPORTER_OTLP_ENDPOINT: ${(error as Error).message}`);
    }
  }
  return {
    ...(otlpEndpoint === undefined ? {} : { otlpEndpoint }),
    traceSampleRatio: flags.traceSampleRatio,
    ...(flags.metricsPort === undefined ? {} : { metricsPort: flags.metricsPort }),
  };
}
