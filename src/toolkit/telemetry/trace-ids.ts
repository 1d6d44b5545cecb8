import { randomFillSync } from "node:crypto";
import { formatTraceParent } from "../rpc/trace-parent.js";

// Most calls are not sampled (1 % is a usual ratio), yet each must still pass
// a trace on so that downstream services do not start traces of their own.
// OpenTelemetry's SDK makes a non-recording span, a context and two random
// ids for each: a fifth of a call's CPU here. These helpers let the tracing
// interceptors pass an unsampled trace on as a plain W3C header instead.

/** Random bytes drawn in bulk and turned into hex at once: an id is then a slice of a string. */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let hex = "";
let used = 0;

function randomHex(digits: number): string {
  if (used + digits > hex.length) {
    randomFillSync(pool);
    hex = pool.toString("hex");
    used = 0;
  }
  used += digits;
  return hex.slice(used - digits, used);
}

/** A new trace id: 32 hex digits. */
export function newTraceId(): string {
  return randomHex(32);
}

/** A new span id: 16 hex digits. */
export function newSpanId(): string {
  return randomHex(16);
}

/** A `traceparent` for a span of `traceId` that is not recorded (flags 00). */
export function unsampledTraceParent(traceId: string): string {
  return formatTraceParent(traceId, newSpanId(), false);
}
