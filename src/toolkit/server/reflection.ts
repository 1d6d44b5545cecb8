import type * as grpc from "@grpc/grpc-js";
import { loadFileDescriptorSetFromBuffer } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { descriptorSetBase64 } from "../../gen/descriptor-set.js";

/**
 * Serves grpc.reflection (v1 and v1alpha) for the hosted services, from the
 * descriptor set generated at build time, so grpcurl and buf curl can list and
 * call every method without .proto files.
 */
export function addReflection(server: Pick<grpc.Server, "addService">, serviceNames: readonly string[]): void {
  const descriptors = loadFileDescriptorSetFromBuffer(Buffer.from(descriptorSetBase64, "base64"));
  new ReflectionService(descriptors, { services: [...serviceNames] }).addToServer(server);
}
