// The W3C Trace Context header every hop passes on, read by hand rather than
// with a regular expression: it is read for every call.

/** The parts of a W3C `traceparent` (version 00). */
export interface TraceParent {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

/**
 * The last header parsed or made here: a call between services in one
 * process reads the same string twice (the client passing it on, the server
 * receiving it), and a header this process has just made is not parsed again.
 */
let lastValue: string | undefined;
let lastParsed: TraceParent | undefined;

/** Parses a `traceparent` header; undefined when absent, malformed or all zeros (then a new trace starts). */
export function parseTraceParent(value: unknown): TraceParent | undefined {
  if (typeof value !== "string") return undefined;
  if (value === lastValue) return lastParsed;
  const parsed = parse(value);
  lastValue = value;
  lastParsed = parsed;
  return parsed;
}

/** The `traceparent` (version 00) of span `spanId` of trace `traceId`: lowercase hex, 32 and 16 digits. */
export function formatTraceParent(traceId: string, spanId: string, sampled: boolean): string {
  const value = `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`;
  lastValue = value;
  lastParsed = { traceId, spanId, sampled };
  return value;
}

function parse(value: string): TraceParent | undefined {
  // A later version is read as version 00 when it starts the same way (W3C); ff is invalid.
  if (value.length < 55 || value.charCodeAt(2) !== 45 /* - */) return undefined;
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
