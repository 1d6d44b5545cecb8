import { CallTunnelServiceDefinition } from "../../gen/switchyard/tunnel/v1/tunnel.js";
import { methodPath } from "../rpc/definition.js";

/** The HTTP/2 path a client opens a call tunnel (proto/switchyard/tunnel/v1) on. */
export const TUNNEL_PATH = methodPath(CallTunnelServiceDefinition, CallTunnelServiceDefinition.methods.open);

/** The response header in which the server says how many calls one tunnel may carry at once. */
export const MAX_CALLS_HEADER = "switchyard-tunnel-max-calls";

/** Room for a call's envelope (method, metadata, status, trailers) on top of its message. */
export const ENVELOPE_BYTES = 64 * 1024;

/** The request header in which the client says how large a response message it accepts. */
export const MAX_RESPONSE_HEADER = "switchyard-tunnel-max-response-bytes";

/**
 * Frames waiting to go out on a tunnel's stream: everything queued in one
 * turn leaves in one write. The flush runs on nextTick, which comes once the
 * turn's promise reactions are done, so answers that settle together share it.
 */
export class FrameBatch {
  private frames: Buffer[] = [];

  constructor(private readonly stream: { readonly destroyed: boolean; readonly writableEnded: boolean; write(chunk: Buffer): boolean }) {}

  push(frame: Buffer): void {
    if (this.frames.push(frame) === 1) process.nextTick(flushBatch, this);
  }

  flush(): void {
    const frames = this.frames;
    if (frames.length === 0) return;
    this.frames = [];
    if (this.stream.destroyed || this.stream.writableEnded) return;
    this.stream.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames));
  }
}

function flushBatch(batch: FrameBatch): void {
  batch.flush();
}

/**
 * Metadata's size as SETTINGS_MAX_HEADER_LIST_SIZE counts a header list:
 * name, value (bytes as their base64) and 32 per entry (RFC 9113 §6.5.2).
 */
export function headerListBytes(metadata: Readonly<Record<string, string | Uint8Array>>): number {
  let bytes = 0;
  for (const key in metadata) {
    const value = metadata[key] as string | Uint8Array;
    bytes += key.length + 32 + (typeof value === "string" ? value.length : Math.ceil((value.byteLength * 4) / 3));
  }
  return bytes;
}
