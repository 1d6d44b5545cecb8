import * as grpc from "@grpc/grpc-js";
import { type CallContext, runWithCallContext } from "../rpc/call-context.js";
import { Code } from "../rpc/code.js";
import type { Metadata } from "../rpc/metadata.js";
import { RpcError } from "../rpc/rpc-error.js";
import { encodeStatusDetails, STATUS_DETAILS_KEY } from "../rpc/status-details.js";
import type { Logger } from "../log/logger.js";
import { isUnexpected, toCallerError } from "./escaped-error.js";
import { chainInterceptors, type ServerCall, type ServerInterceptor } from "./server-interceptor.js";
import type { ServiceRegistration } from "./service-registration.js";
import { createHealth, type Health } from "./health.js";
import { addReflection } from "./reflection.js";

/** Options for createRpcServer. */
export interface RpcServerOptions {
  readonly services: readonly ServiceRegistration[];
  readonly logger: Logger;
  /** Run around every handler call, first listed outermost. Default none. */
  readonly interceptors?: readonly ServerInterceptor[];
  /** Largest request accepted, in bytes. Default 4 MiB (gRPC's usual limit). */
  readonly maxReceiveMessageBytes?: number;
  /** How long shutdown waits for in-flight calls before cancelling them. Default 10 s. */
  readonly drainTimeoutMs?: number;
  /** Serve grpc.reflection v1 and v1alpha. Default true. */
  readonly reflection?: boolean;
  /** Server TLS; plaintext when absent. */
  readonly credentials?: grpc.ServerCredentials;
}

/** A running (or ready to run) gRPC server hosting Switchyard services. */
export interface RpcServer {
  /** Binds `host:port` (port 0 picks a free one) and resolves to the bound port. */
  listen(address: string): Promise<number>;
  /** The grpc.health.v1 service's state. */
  readonly health: Health;
  /**
   * Graceful stop: health NOT_SERVING, refuse new calls, let in-flight calls
   * finish within the drain timeout, then cancel what is left.
   */
  shutdown(): Promise<void>;
}

/** Hosts services on @grpc/grpc-js, with health checking and reflection. */
export function createRpcServer(options: RpcServerOptions): RpcServer {
  const { logger } = options;
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
  });
  const serviceNames = options.services.map((s) => s.definition.fullName);
  const health = createHealth(serviceNames);
  health.addTo(server);
  if (options.reflection ?? true) addReflection(server, serviceNames);

  let draining = false;
  const dispatch = chainInterceptors(options.interceptors ?? [], (call) => {
    const registration = options.services.find((s) => s.definition.fullName === call.service);
    const handler = registration?.handlers[lowerFirst(call.method)];
    if (handler === undefined) throw new RpcError(Code.UNIMPLEMENTED, `${call.service}/${call.method} is not implemented`);
    return handler(call.request, call.context);
  });

  for (const { definition, handlers } of options.services) {
    const grpcDefinition: Record<string, grpc.MethodDefinition<Buffer, unknown>> = {};
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const [key, method] of Object.entries(definition.methods)) {
      if (handlers[key] === undefined) throw new Error(`${definition.fullName}: no handler for ${method.name}`);
      grpcDefinition[key] = {
        path: `/${definition.fullName}/${method.name}`,
        requestStream: false,
        responseStream: false,
        // Requests are decoded inside the call so that undecodable bytes answer
        // INVALID_ARGUMENT (grpc-js would answer INTERNAL).
        requestDeserialize: (bytes: Buffer) => bytes,
        requestSerialize: (bytes: Buffer) => bytes,
        responseSerialize: (response: unknown) => toBuffer(method.responseType.encode(response).finish()),
        responseDeserialize: (bytes: Buffer) => method.responseType.decode(bytes),
        originalName: key,
      };
      const handleUnary: grpc.handleUnaryCall<Buffer, unknown> = (call, callback) => {
        const respond = (error: unknown): void => {
          const callerError = toCallerError(error);
          if (isUnexpected(callerError)) {
            logger.error({ err: callerError.cause ?? callerError, method: method.name }, "call failed unexpectedly");
          }
          callback(toServiceError(callerError));
        };
        if (draining) return respond(new RpcError(Code.UNAVAILABLE, "the server is shutting down; retry on another instance"));
        let request: unknown;
        try {
          request = method.requestType.decode(call.request);
        } catch (cause) {
          return respond(
            new RpcError(Code.INVALID_ARGUMENT, `the request body is not a valid ${definition.name}.${method.name} request`, {
              reason: "MALFORMED_REQUEST",
              cause,
            }),
          );
        }
        const context = createCallContext(call, `/${definition.fullName}/${method.name}`);
        const serverCall: ServerCall = { service: definition.fullName, method: method.name, request, context };
        runWithCallContext(context, () => dispatch(serverCall)).then((response) => callback(null, response), respond);
      };
      implementation[key] = handleUnary as grpc.UntypedHandleCall;
    }
    server.addService(grpcDefinition as grpc.ServiceDefinition, implementation);
  }

  return {
    health,
    listen(address) {
      return new Promise((resolve, reject) => {
        server.bindAsync(address, options.credentials ?? grpc.ServerCredentials.createInsecure(), (error, port) =>
          error ? reject(error) : resolve(port),
        );
      });
    },
    async shutdown() {
      health.setAllNotServing();
      draining = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn({ drainTimeoutMs }, "drain timeout reached; cancelling calls still in flight");
          server.forceShutdown();
          resolve();
        }, drainTimeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

function createCallContext(call: grpc.ServerUnaryCall<Buffer, unknown>, method: string): CallContext {
  const controller = new AbortController();
  call.once("cancelled", () => controller.abort(new RpcError(Code.CANCELLED, "the caller cancelled the call")));
  const deadline = toEpochMs(call.getDeadline());
  let metadata: Metadata | undefined;
  return {
    method,
    deadline,
    signal: controller.signal,
    // Converted on first use: most handlers never read metadata.
    get metadata(): Metadata {
      metadata ??= call.metadata.getMap();
      return metadata;
    },
    peer: call.getPeer(),
  };
}

function toEpochMs(deadline: grpc.Deadline): number | undefined {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}

function toServiceError(error: RpcError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set(STATUS_DETAILS_KEY, toBuffer(encodeStatusDetails(error)));
  return { code: error.code as number as grpc.status, details: error.message, metadata };
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}
