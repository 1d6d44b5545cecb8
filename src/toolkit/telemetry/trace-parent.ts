import { randomFillSync } from "node:crypto";

// Most calls are not sampled (1 % is a usual ratio), yet each must still pass
// a trace on so that downstream services do not start traces of their own.
// OpenTelemetry's SDK makes a non-recording span, a context and two random
// ids for each: a fifth of a call's CPU here. These helpers let the tracing
// interceptors pass an unsampled trace on as a plain W3C header instead.

/** The parts of a W3C `traceparent` (version 00). */
export interface TraceParent {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

/** Parses a `traceparent` header; undefined when absent, malformed or all zeros (then a new trace starts). */
export function parseTraceParent(value: unknown): TraceParent | undefined {
  // By hand rather than with a regular expression: this runs for every call.
  // A later version is read as version 00 when it starts the same way (W3C); ff is invalid.
  if (typeof value !== "string" || value.length < 55 || value.charCodeAt(2) !== 45 /* - */) return undefined;
  const version = value.slice(0, 2);
  if (version === "ff" || (version === "00" ? value.length !== 55 : value.length > 55 && value.charCodeAt(55) !== 45)) return undefined;
  if (!/^[0-9a-f]{2}$/.test(version)) return undefined;
  if (value.charCodeAt(35) !== 45 /* - */ || value.charCodeAt(52) !== 45) return undefined;
  let traceZero = true;
  let spanZero = true;
  for (let i = 3; i < 55; i++) {
    if (i === 35 || i === 52) continue;
    const c = value.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return undefined; // 0-9, a-f
    if (c !== 48) {
      if (i < 35) traceZero = false;
      else if (i < 52) spanZero = false;
    }
  }
  if (traceZero || spanZero) return undefined;
  const flags = Number.parseInt(value.slice(53, 55), 16);
  return { traceId: value.slice(3, 35), spanId: value.slice(36, 52), sampled: (flags & 1) === 1 };
}

/** Random bytes drawn in bulk, handed out as hex: one system call per few hundred ids. */
const pool = Buffer.alloc(4096);
let used = pool.length;

function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString("hex", used, used + bytes);
  used += bytes;
  return hex;
}

/** A new trace id: 32 hex digits. */
export function newTraceId(): string {
  return randomHex(16);
}

/** A new span id: 16 hex digits. */
export function newSpanId(): string {
  return randomHex(8);
}

/** A `traceparent` for a span of `traceId` that is not recorded (flags 00). */
export function unsampledTraceParent(traceId: string): string {
  return `00-${traceId}-${newSpanId()}-00`;
}
