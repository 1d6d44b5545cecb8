import http2 from "node:http2";
import { isDeepStrictEqual } from "node:util";
import type { MethodSpec } from "./fixtures.js";
import { parseGrpcFrames } from "./grpc-frame.js";

/**
 * Sends the exact bytes h2load will send (the body file) with h2load's
 * headers over a raw HTTP/2 stream, and checks what h2load cannot: the
 * trailers carry grpc-status 0 and the one message decodes to `expected`.
 */
export async function checkFrameFile(
  port: number,
  spec: MethodSpec,
  body: Buffer,
  expected: Record<string, string>,
): Promise<void> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const { status, grpcStatus, grpcMessage, data } = await new Promise<{
      status: number;
      grpcStatus: string | undefined;
      grpcMessage: string | undefined;
      data: Buffer;
    }>((resolve, reject) => {
      session.once("error", reject);
      const stream = session.request({
        ":method": "POST",
        ":path": spec.path,
        "content-type": "application/grpc",
        te: "trailers",
      });
      const chunks: Buffer[] = [];
      let status = 0;
      // A trailers-only answer (an error) puts grpc-status in the headers.
      let headerStatus: string | undefined;
      let headerMessage: string | undefined;
      stream.on("response", (headers) => {
        status = Number(headers[":status"]);
        headerStatus = single(headers["grpc-status"]);
        headerMessage = single(headers["grpc-message"]);
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      let trailers: http2.IncomingHttpHeaders = {};
      stream.on("trailers", (received) => (trailers = received));
      stream.on("error", reject);
      stream.on("end", () =>
        resolve({
          status,
          grpcStatus: single(trailers["grpc-status"]) ?? headerStatus,
          grpcMessage: single(trailers["grpc-message"]) ?? headerMessage,
          data: Buffer.concat(chunks),
        }),
      );
      stream.end(body);
    });
    const where = `${spec.path} with the h2load body`;
    if (status !== 200) throw new Error(`${where}: HTTP status ${status}`);
    if (grpcStatus !== "0") throw new Error(`${where}: grpc-status ${grpcStatus ?? "missing"} ${grpcMessage ?? ""}`);
    const messages = parseGrpcFrames(data);
    if (messages.length !== 1 || messages[0] === undefined) throw new Error(`${where}: ${messages.length} messages, expected 1`);
    const actual = spec.decode(messages[0]);
    if (!isDeepStrictEqual(actual, expected)) {
      throw new Error(`${where}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    }
  } finally {
    session.close();
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
