import type * as grpc from "@grpc/grpc-js";
import { descriptorSetBase64 } from "../../gen/descriptor-set.js";

/** The methods addReflection serves: grpc.reflection v1 and v1alpha. */
export const REFLECTION_PATHS: readonly string[] = [
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/**
 * Serves grpc.reflection (v1 and v1alpha) for the hosted services, from the
 * descriptor set generated at build time, so grpcurl and buf curl can list and
 * call every method without .proto files. @grpc/reflection and the
 * protobufjs descriptors it works on are imported here, when called, so a
 * server whose reflection is never asked (the node:http2 engine adds it on
 * the first call) does not keep them in its heap.
 */
export async function addReflection(server: Pick<grpc.Server, "addService">, serviceNames: readonly string[]): Promise<void> {
  const [{ loadFileDescriptorSetFromBuffer }, { ReflectionService }] = await Promise.all([
    import("@grpc/proto-loader"),
    import("@grpc/reflection"),
  ]);
  const descriptors = loadFileDescriptorSetFromBuffer(Buffer.from(descriptorSetBase64, "base64"));
  new ReflectionService(descriptors, { services: [...serviceNames] }).addToServer(server);
}
