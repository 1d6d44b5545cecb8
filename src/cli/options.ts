import { InvalidArgumentError } from "commander";
import type { ServiceName } from "../app/switchyard.js";

/** Parses a TCP port (0–65535) for commander, with an error a person can act on. */
export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) throw new InvalidArgumentError("expected a port number between 0 and 65535");
  return port;
}

/** Parses a positive whole number of milliseconds. */
export function parseMillis(value: string): number {
  const ms = Number(value);
  if (!/^\d+$/.test(value) || ms <= 0) throw new InvalidArgumentError("expected a positive number of milliseconds");
  return ms;
}

const SERVICE_NAMES: readonly ServiceName[] = ["user", "order"];

/** Parses `user`, `order` or `user,order`. */
export function parseServices(value: string): ServiceName[] {
  const names = value.split(",").map((name) => name.trim());
  for (const name of names) {
    if (!(SERVICE_NAMES as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`unknown service "${name}"; expected a comma-separated list of: ${SERVICE_NAMES.join(", ")}`);
    }
  }
  return [...new Set(names)] as ServiceName[];
}

/** Accepts `postgres://` and `postgresql://` URLs only. */
export function parseDatabaseUrl(value: string): string {
  if (!/^postgres(ql)?:\/\//.test(value)) throw new InvalidArgumentError("expected a postgres:// or postgresql:// URL");
  return value;
}

/** Accepts a gRPC target such as `host:port`, `dns:///host:port` or `unix:///path`. */
export function parseTarget(value: string): string {
  if (!/^([a-z][a-z0-9+.-]*:)?\S+$/i.test(value) || value.trim() === "") {
    throw new InvalidArgumentError("expected an address such as localhost:50051");
  }
  return value;
}

/** Log levels pino understands. */
export function parseLogLevel(value: string): string {
  const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  if (!levels.includes(value)) throw new InvalidArgumentError(`expected one of: ${levels.join(", ")}`);
  return value;
}

/** `json`, `pretty` or `auto`. */
export function parseLogFormat(value: string): "json" | "pretty" | "auto" {
  if (value !== "json" && value !== "pretty" && value !== "auto") throw new InvalidArgumentError("expected json, pretty or auto");
  return value;
}
