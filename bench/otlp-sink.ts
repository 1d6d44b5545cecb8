import http from "node:http";
import type { AddressInfo } from "node:net";

/** A running OTLP/HTTP endpoint that accepts trace exports and throws them away. */
export interface OtlpSink {
  /** `http://127.0.0.1:PORT`: what `serve --otlp-endpoint` takes (spans go to `/v1/traces`). */
  readonly endpoint: string;
  /** Export requests received so far, and their bytes: proof that tracing was on. */
  readonly received: { requests: number; bytes: number };
  close(): Promise<void>;
}

/**
 * Stands in for a collector, so that the telemetry configuration pays the
 * whole export path (batching, protobuf encoding, an HTTP POST) and nothing
 * of a collector's own work lands on the server core: it runs in the bench
 * process, which is pinned to the load core. Answers every `POST /v1/traces`
 * with 200 and an empty ExportTraceServiceResponse (an empty protobuf body).
 */
export async function startOtlpSink(): Promise<OtlpSink> {
  const received = { requests: 0, bytes: 0 };
  const server = http.createServer((request, response) => {
    if (request.method !== "POST" || request.url !== "/v1/traces") {
      request.resume();
      response.writeHead(404).end();
      return;
    }
    request.on("data", (chunk: Buffer) => (received.bytes += chunk.length));
    request.on("end", () => {
      received.requests += 1;
      response.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
