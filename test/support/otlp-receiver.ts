import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import protobuf from "protobufjs";

/** A span as received, with ids in hex and attributes as plain values. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: "INTERNAL" | "SERVER" | "CLIENT" | "PRODUCER" | "CONSUMER" | "UNSPECIFIED";
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly status: { readonly code: "UNSET" | "OK" | "ERROR"; readonly message: string };
  /** Start and end, in milliseconds since the epoch (from the span's nanoseconds). */
  readonly startMs: number;
  readonly endMs: number;
  /** The resource's attributes, e.g. `service.name`. */
  readonly resource: Readonly<Record<string, string | number | boolean>>;
}

/** A loopback OTLP/HTTP trace receiver, as a collector or Jaeger would run. */
export interface OtlpReceiver {
  /** Base endpoint, e.g. `http://127.0.0.1:4318`, to give as OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  /** Every span received so far. */
  readonly spans: readonly ReceivedSpan[];
  /** Export requests received, with the content type each came with. */
  readonly requests: readonly { readonly path: string; readonly contentType: string }[];
  /** Resolves once `predicate` holds for the spans received (or rejects after `timeoutMs`). */
  waitFor(predicate: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<readonly ReceivedSpan[]>;
  close(): Promise<void>;
}

const protoFile = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/otlp-trace.proto");
const root = protobuf.loadSync(protoFile);
const ExportTraceServiceRequest = root.lookupType("otlp.test.ExportTraceServiceRequest");

interface DecodedValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
}
interface DecodedKeyValue {
  key: string;
  value?: DecodedValue;
}
interface DecodedSpan {
  traceId?: Buffer;
  spanId?: Buffer;
  parentSpanId?: Buffer;
  name?: string;
  kind?: string;
  /** Nanoseconds since the epoch, as a decimal string (`longs: String`). */
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: DecodedKeyValue[];
  status?: { code?: string; message?: string };
}
interface DecodedRequest {
  resourceSpans?: { resource?: { attributes?: DecodedKeyValue[] }; scopeSpans?: { spans?: DecodedSpan[] }[] }[];
}

function attributesOf(list: readonly DecodedKeyValue[] | undefined): Record<string, string | number | boolean> {
  const attributes: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (value?.stringValue !== undefined) attributes[key] = value.stringValue;
    else if (value?.boolValue !== undefined) attributes[key] = value.boolValue;
    else if (value?.intValue !== undefined) attributes[key] = Number(value.intValue);
    else if (value?.doubleValue !== undefined) attributes[key] = value.doubleValue;
  }
  return attributes;
}

/** Decodes one OTLP ExportTraceServiceRequest (protobuf) into spans. */
export function decodeTraceRequest(body: Uint8Array): ReceivedSpan[] {
  const request = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(body), {
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: false,
    oneofs: false,
  }) as DecodedRequest;
  const hex = (bytes: Buffer | undefined): string => (bytes === undefined ? "" : bytes.toString("hex"));
  const millis = (nanos: string | undefined): number => (nanos === undefined ? 0 : Number(BigInt(nanos) / 1_000n) / 1_000);
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          name: span.name ?? "",
          kind: (span.kind ?? "SPAN_KIND_UNSPECIFIED").replace("SPAN_KIND_", "") as ReceivedSpan["kind"],
          attributes: attributesOf(span.attributes),
          status: {
            code: (span.status?.code ?? "STATUS_CODE_UNSET").replace("STATUS_CODE_", "") as ReceivedSpan["status"]["code"],
            message: span.status?.message ?? "",
          },
          startMs: millis(span.startTimeUnixNano),
          endMs: millis(span.endTimeUnixNano),
          resource,
        });
      }
    }
  }
  return spans;
}

/**
 * Starts a receiver on 127.0.0.1 (a free port) accepting `POST /v1/traces`
 * with `application/x-protobuf` bodies (gzip or not), answering as the
 * OTLP/HTTP spec says. Anything else is refused with a 4xx, so that a
 * misconfigured exporter fails the test instead of passing it.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: { path: string; contentType: string }[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const contentType = request.headers["content-type"] ?? "";
      requests.push({ path: request.url ?? "", contentType });
      if (request.method !== "POST" || request.url !== "/v1/traces") {
        response.writeHead(404).end();
        return;
      }
      if (contentType !== "application/x-protobuf") {
        response.writeHead(415).end();
        return;
      }
      try {
        let body = Buffer.concat(chunks);
        if (request.headers["content-encoding"] === "gzip") body = gunzipSync(body);
        spans.push(...decodeTraceRequest(body));
      } catch (error) {
        response.writeHead(400, { "content-type": "text/plain" }).end(String(error));
        return;
      }
      // An empty ExportTraceServiceResponse: full success.
      response.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    requests,
    waitFor(predicate, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!predicate(spans)) return;
          cleanup();
          resolve(spans);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for spans; received: ${JSON.stringify(spans.map((s) => s.name))}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
