/**
 * The ceiling: a bare node:http2 server that answers every POST with a fixed,
 * valid gRPC response (headers, one length-prefixed message, trailers with
 * grpc-status 0). No routing beyond a map lookup, no decoding, no framework.
 * It is what one Node process can do at best; every other figure is read
 * against it.
 *
 * Usage: node --import tsx bench/baselines/bare-http2.ts --port N [--host H]
 */
import http2 from "node:http2";
import { parseArgs } from "node:util";
import { BENCH_METHODS, encodedV1Response, METHOD_SPECS } from "../fixtures.js";
import { grpcFrame } from "../grpc-frame.js";

const { values } = parseArgs({ options: { port: { type: "string" }, host: { type: "string", default: "127.0.0.1" } } });
const port = Number(values.port ?? "0");

// Precomputed per path so that correctness checks see the right body; a path
// we do not know gets the GetUser answer (still a valid gRPC response).
const frames = new Map<string, Buffer>(BENCH_METHODS.map((m) => [METHOD_SPECS[m].path, grpcFrame(encodedV1Response(m))]));
const fallback = grpcFrame(encodedV1Response("GetUser"));
const RESPONSE_HEADERS = { ":status": 200, "content-type": "application/grpc" };
const TRAILERS = { "grpc-status": "0" };

const server = http2.createServer();
server.on("stream", (stream, headers) => {
  if (headers[":method"] !== "POST") {
    stream.respond({ ":status": 405 }, { endStream: true });
    return;
  }
  const frame = frames.get(String(headers[":path"])) ?? fallback;
  // Answer once the request is complete, as a unary gRPC server does.
  stream.resume();
  stream.on("end", () => {
    if (stream.destroyed) return;
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers(TRAILERS));
    stream.end(frame);
  });
  stream.on("error", () => undefined);
});
server.listen(port, values.host, () => undefined);

const stop = (): void => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
