import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** Options for startMetricsServer. */
export interface MetricsServerOptions {
  readonly registry: Registry;
  /** More families in the text format, written after the registry's (e.g. the RPC metrics). */
  readonly render?: () => string;
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

/** Serves `registry` (and `render`'s text) in the Prometheus text format at `GET /metrics`. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { registry, render } = options;
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
    registry
      .metrics()
      .then((text) => (render === undefined ? text : `${text}\n${render()}`))
      .then(
        (body) => response.writeHead(200, { "content-type": registry.contentType }).end(request.method === "HEAD" ? undefined : body),
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
