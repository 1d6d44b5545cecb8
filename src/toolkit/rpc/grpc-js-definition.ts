import type * as grpc from "@grpc/grpc-js";
import type { ServiceDefinition } from "./definition.js";

/**
 * A generated service definition in @grpc/grpc-js's shape (what its
 * `Server.addService` and `makeGenericClientConstructor` take), with our
 * generated codecs as the serializers: no .proto file is loaded at run time.
 */
export function toGrpcJsDefinition(service: ServiceDefinition): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [key, method] of Object.entries(service.methods)) {
    definition[key] = {
      path: `/${service.fullName}/${method.name}`,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
      requestSerialize: (message: unknown) => asBuffer(method.requestType.encode(message).finish()),
      requestDeserialize: (bytes: Buffer) => method.requestType.decode(bytes),
      responseSerialize: (message: unknown) => asBuffer(method.responseType.encode(message).finish()),
      responseDeserialize: (bytes: Buffer) => method.responseType.decode(bytes),
      originalName: key,
    };
  }
  return definition;
}

/** The same bytes as a Buffer, without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
