import type { EndpointVerdict } from "./endpoint-verdict.js";

/**
 * Outlier detection of a client channel: every interval, an endpoint that
 * answered at least `requestVolume` attempts of which more than
 * `failurePercentage` % failed *as an endpoint* (see endpointVerdict: an
 * application status such as NOT_FOUND is a healthy answer) is ejected — it
 * gets no new calls — for `baseEjectionTimeMs` × the number of times in a
 * row it was ejected (at most `maxEjectionTimeMs`), then gets calls again and
 * is judged like any other.
 */
export interface OutlierDetectionOptions {
  /** How often the counts are judged, and how soon an ejection can happen. Default 1000 ms. */
  readonly intervalMs?: number;
  /** The first ejection's length; each further one in a row lasts this much longer. Default 5000 ms. */
  readonly baseEjectionTimeMs?: number;
  /** Longest ejection. Default 30000 ms. */
  readonly maxEjectionTimeMs?: number;
  /** Endpoint failures, in percent of the attempts judged, above which an endpoint is ejected. Default 50. */
  readonly failurePercentage?: number;
  /** Attempts judged in an interval below which an endpoint is not judged. Default 5 (5 calls/s per endpoint). */
  readonly requestVolume?: number;
  /**
   * Most endpoints ejected at once, in percent of them, rounded down — but
   * with two endpoints or more one may always be ejected (0 ejects none).
   * Never all of them: ejecting the last endpoint would fail every call
   * rather than some. Default 50.
   */
  readonly maxEjectionPercent?: number;
}

/** OutlierDetectionOptions with every default applied, validated. */
export type EjectionSettings = Required<OutlierDetectionOptions>;

/** Applies the defaults and checks the values once; throws a RangeError naming a bad one. */
export function ejectionSettings(options: OutlierDetectionOptions = {}): EjectionSettings {
  const settings: EjectionSettings = {
    intervalMs: options.intervalMs ?? 1_000,
    baseEjectionTimeMs: options.baseEjectionTimeMs ?? 5_000,
    maxEjectionTimeMs: options.maxEjectionTimeMs ?? 30_000,
    failurePercentage: options.failurePercentage ?? 50,
    requestVolume: options.requestVolume ?? 5,
    maxEjectionPercent: options.maxEjectionPercent ?? 50,
  };
  const check = (name: keyof EjectionSettings, valid: (value: number) => boolean, what: string): void => {
    const value = settings[name];
    if (typeof value !== "number" || !Number.isFinite(value) || !valid(value)) {
      throw new RangeError(`outlier detection: ${name} must be ${what}, not ${String(value)}`);
    }
  };
  check("intervalMs", (v) => v > 0, "a positive number of milliseconds");
  check("baseEjectionTimeMs", (v) => v >= 0, "zero or more milliseconds");
  check("maxEjectionTimeMs", (v) => v >= 0, "zero or more milliseconds");
  check("failurePercentage", (v) => v >= 0 && v <= 100, "a percentage (0 to 100)");
  check("requestVolume", (v) => v >= 1 && Number.isInteger(v), "a whole number of attempts, at least 1");
  check("maxEjectionPercent", (v) => v >= 0 && v <= 100, "a percentage (0 to 100)");
  return settings;
}

/** What one judgement changed. */
export interface EjectionChanges<K> {
  /** Endpoints ejected now, most failing first. */
  readonly ejected: readonly K[];
  /** Endpoints whose ejection ended: they get calls again. */
  readonly returned: readonly K[];
}

interface Tally {
  healthy: number;
  failed: number;
  /** When the current ejection began; undefined while in rotation. */
  ejectedAt: number | undefined;
  /** Ejections in a row: raised by each, lowered by each interval judged without one. */
  multiplier: number;
}

/**
 * The ejection decisions, apart from grpc-js so they can be tested with a
 * fake clock: counts each endpoint's attempts between judgements and decides,
 * at each, who is ejected and who comes back. Endpoints are keys of any kind.
 */
export class EndpointEjection<K> {
  private readonly tallies = new Map<K, Tally>();

  constructor(private settings: EjectionSettings) {}

  /** Settings for the next judgements (a new service config); ejections in progress keep their start. */
  configure(settings: EjectionSettings): void {
    this.settings = settings;
  }

  /** The endpoints now known: new ones start clean, missing ones are forgotten. */
  setEndpoints(keys: Iterable<K>): void {
    const current = new Set(keys);
    for (const key of this.tallies.keys()) if (!current.has(key)) this.tallies.delete(key);
    for (const key of current) {
      if (!this.tallies.has(key)) this.tallies.set(key, { healthy: 0, failed: 0, ejectedAt: undefined, multiplier: 0 });
    }
  }

  /** Counts one finished attempt on `key` (unknown endpoints and ignored attempts are not counted). */
  record(key: K, verdict: EndpointVerdict): void {
    const tally = this.tallies.get(key);
    if (tally === undefined || verdict === "ignored") return;
    if (verdict === "healthy") tally.healthy++;
    else tally.failed++;
  }

  isEjected(key: K): boolean {
    return this.tallies.get(key)?.ejectedAt !== undefined;
  }

  /**
   * Judges the interval that ends at `now`, then starts a new one. Ejections
   * that are over end first (an ejected endpoint's late answers — the calls
   * in flight when it was ejected — are not judged, or a silent endpoint
   * would be ejected again the moment it returns). Then the endpoints in
   * rotation with enough attempts and too many failures are ejected, most
   * failing first, while the cap allows.
   */
  judge(now: number): EjectionChanges<K> {
    const { baseEjectionTimeMs, maxEjectionTimeMs, requestVolume, failurePercentage } = this.settings;
    const returned: K[] = [];
    const candidates: Array<{ key: K; tally: Tally; failing: number }> = [];
    let ejectedCount = 0;
    for (const [key, tally] of this.tallies) {
      if (tally.ejectedAt !== undefined) {
        const lengthMs = Math.min(baseEjectionTimeMs * tally.multiplier, Math.max(baseEjectionTimeMs, maxEjectionTimeMs));
        if (now >= tally.ejectedAt + lengthMs) {
          tally.ejectedAt = undefined;
          returned.push(key);
        } else {
          ejectedCount++;
        }
        continue;
      }
      const judged = tally.healthy + tally.failed;
      const failing = judged === 0 ? 0 : (tally.failed * 100) / judged;
      if (judged >= requestVolume && failing > failurePercentage) candidates.push({ key, tally, failing });
      else tally.multiplier = Math.max(0, tally.multiplier - 1);
    }
    candidates.sort((a, b) => b.failing - a.failing);
    const cap = this.ejectionCap();
    const ejected: K[] = [];
    for (const candidate of candidates) {
      if (ejectedCount >= cap) {
        candidate.tally.multiplier = Math.max(0, candidate.tally.multiplier - 1);
        continue;
      }
      candidate.tally.ejectedAt = now;
      candidate.tally.multiplier++;
      ejectedCount++;
      ejected.push(candidate.key);
    }
    for (const tally of this.tallies.values()) {
      tally.healthy = 0;
      tally.failed = 0;
    }
    return { ejected, returned };
  }

  /** Most endpoints ejected at once: the percentage rounded down, at least one of two or more, never all. */
  private ejectionCap(): number {
    const count = this.tallies.size;
    const percent = this.settings.maxEjectionPercent;
    if (count < 2 || percent === 0) return 0;
    return Math.min(count - 1, Math.max(1, Math.floor((count * percent) / 100)));
  }
}
