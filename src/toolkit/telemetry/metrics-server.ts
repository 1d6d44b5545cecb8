import http from "node:http";
import type { AddressInfo } from "node:net";

/** Options for startMetricsServer. */
export interface MetricsServerOptions {
  /** The exposition to serve, made anew for each scrape. */
  readonly collect: () => Promise<string>;
  /** 0 picks a free port. */
  readonly port: number;
  /** Default `0.0.0.0`. */
  readonly host?: string;
}

/** A running `/metrics` endpoint. */
export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** The Prometheus text format's content type (version 0.0.4). */
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Serves what `collect` makes, in the Prometheus text format, at `GET /metrics`. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { collect } = options;
  const server = http.createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: metrics are at /metrics\n");
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    collect().then(
      (body) => response.writeHead(200, { "content-type": CONTENT_TYPE }).end(request.method === "HEAD" ? undefined : body),
      (error: unknown) => response.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
