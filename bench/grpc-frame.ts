/**
 * gRPC's message framing: a 1-byte compressed flag (0 here), a 4-byte
 * big-endian length, then the protobuf bytes. h2load sends the file as-is.
 */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.byteLength);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, 5);
  return frame;
}

/** The messages in a buffer of one or more gRPC frames; throws on a truncated or compressed frame. */
export function parseGrpcFrames(data: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  let offset = 0;
  while (offset < data.byteLength) {
    if (data.byteLength - offset < 5) throw new Error("truncated gRPC frame header");
    if (data.readUInt8(offset) !== 0) throw new Error("compressed gRPC frame (not expected here)");
    const length = data.readUInt32BE(offset + 1);
    if (data.byteLength - offset - 5 < length) throw new Error("truncated gRPC message");
    messages.push(data.subarray(offset + 5, offset + 5 + length));
    offset += 5 + length;
  }
  return messages;
}
