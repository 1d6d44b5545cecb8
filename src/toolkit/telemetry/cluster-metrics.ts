import cluster, { type Worker } from "node:cluster";
import { randomUUID } from "node:crypto";
import { type MetricsServer, startMetricsServer } from "./metrics-server.js";
import { escapeLabelValue } from "./prometheus-text.js";

// prom-client's AggregatorRegistry sums its own registries across workers,
// but the RPC and store metrics here render their own text; so each worker
// sends its whole exposition and the primary keeps every worker's series
// apart under a `worker` label (sum them in PromQL: `sum without (worker)`).

interface MetricsRequest {
  readonly kind: "switchyard:metrics-request";
  readonly id: string;
}

interface MetricsReply {
  readonly kind: "switchyard:metrics-reply";
  readonly id: string;
  readonly text: string;
}

function isMessage<T extends { kind: string }>(message: unknown, kind: T["kind"]): message is T {
  return typeof message === "object" && message !== null && (message as { kind?: unknown }).kind === kind;
}

/** In a cluster worker: answers the primary's scrapes with `collect`'s exposition. */
export function answerClusterScrapes(collect: () => Promise<string>): () => void {
  const onMessage = (message: unknown): void => {
    if (!isMessage<MetricsRequest>(message, "switchyard:metrics-request")) return;
    void collect().then(
      (text) => process.send?.({ kind: "switchyard:metrics-reply", id: message.id, text } satisfies MetricsReply),
      () => process.send?.({ kind: "switchyard:metrics-reply", id: message.id, text: "" } satisfies MetricsReply),
    );
  };
  process.on("message", onMessage);
  return () => process.off("message", onMessage);
}

/** Options for startClusterMetricsServer. */
export interface ClusterMetricsServerOptions {
  /** 0 picks a free port. */
  readonly port: number;
  /** Default `0.0.0.0`. */
  readonly host?: string;
  /** How long a scrape waits for a worker; a worker that does not answer is left out. Default 2000 ms. */
  readonly workerTimeoutMs?: number;
}

/** In the primary of a cluster: serves `/metrics` with every worker's metrics, each under `worker="<id>"`. */
export function startClusterMetricsServer(options: ClusterMetricsServerOptions): Promise<MetricsServer> {
  if (!cluster.isPrimary) throw new Error("startClusterMetricsServer runs in the primary process");
  const timeoutMs = options.workerTimeoutMs ?? 2_000;
  return startMetricsServer({
    port: options.port,
    ...(options.host === undefined ? {} : { host: options.host }),
    collect: async () => {
      const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker?.isConnected() === true);
      const texts = await Promise.all(workers.map((worker) => scrape(worker, timeoutMs)));
      return mergeExpositions(workers.flatMap((worker, i) => (texts[i] === undefined ? [] : [{ worker: String(worker.id), text: texts[i] }])));
    },
  });
}

function scrape(worker: Worker, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const id = randomUUID();
    const done = (text: string | undefined): void => {
      clearTimeout(timer);
      worker.off("message", onMessage);
      resolve(text);
    };
    const onMessage = (message: unknown): void => {
      if (isMessage<MetricsReply>(message, "switchyard:metrics-reply") && message.id === id) done(message.text);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    worker.on("message", onMessage);
    worker.send({ kind: "switchyard:metrics-request", id } satisfies MetricsRequest, (error: Error | null) => {
      if (error) done(undefined);
    });
  });
}

/**
 * One exposition (Prometheus text format) from several processes': each
 * family's HELP and TYPE once, then every process's samples with a label
 * naming it. A sample belongs to the family of the TYPE line above it
 * (`x_bucket` and `x_count` under `x`).
 */
export function mergeExpositions(parts: readonly { readonly worker: string; readonly text: string }[]): string {
  const families = new Map<string, { header: string[]; samples: string[] }>();
  const familyNamed = (name: string): { header: string[]; samples: string[] } => {
    let family = families.get(name);
    if (family === undefined) families.set(name, (family = { header: [], samples: [] }));
    return family;
  };
  for (const { worker, text } of parts) {
    let current = "";
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const header = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (header !== null) {
        current = header[2] as string;
        const family = familyNamed(current);
        if (!family.header.some((existing) => existing.startsWith(`# ${header[1] as string} `))) family.header.push(line);
        continue;
      }
      if (line.startsWith("#")) continue;
      const name = /^[^{\s]+/.exec(line)?.[0] ?? "";
      // A histogram's or summary's series (x_bucket, x_sum, x_count) belong to x; any other name is a family of its own.
      const family = name === current || /^(.*)_(bucket|sum|count|total|created)$/.exec(name)?.[1] === current ? current : name;
      familyNamed(family).samples.push(withLabel(line, "worker", worker));
    }
  }
  const lines: string[] = [];
  for (const { header, samples } of families.values()) lines.push(...header, ...samples);
  return `${lines.join("\n")}\n`;
}

/** `name{a="1"} 2` → `name{worker="w",a="1"} 2`; `name 2` → `name{worker="w"} 2`. */
function withLabel(sample: string, label: string, value: string): string {
  const pair = `${label}="${escapeLabelValue(value)}"`;
  const brace = sample.indexOf("{");
  const space = sample.indexOf(" ");
  if (brace !== -1 && (space === -1 || brace < space)) {
    const empty = sample[brace + 1] === "}";
    return `${sample.slice(0, brace + 1)}${pair}${empty ? "" : ","}${sample.slice(brace + 1)}`;
  }
  return space === -1 ? sample : `${sample.slice(0, space)}{${pair}}${sample.slice(space)}`;
}
