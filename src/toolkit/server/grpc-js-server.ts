import * as grpc from "@grpc/grpc-js";
import type http2 from "node:http2";
import type { CallContext } from "../rpc/call-context.js";
import { CancellationSource } from "../rpc/cancellation.js";
import { Code } from "../rpc/code.js";
import type { Metadata } from "../rpc/metadata.js";
import { RpcError } from "../rpc/rpc-error.js";
import { encodeStatusDetails, STATUS_DETAILS_KEY } from "../rpc/status-details.js";
import { asBuffer } from "../rpc/grpc-js-definition.js";
import type { Logger } from "../log/logger.js";
import { cappedTimeout, checkMaxDeadline, maxDeadlineExceeded } from "./deadline-cap.js";
import { type CallObserver, createDispatcher, type Dispatcher, type Route } from "./dispatcher.js";
import { createHealth, type Health } from "./health.js";
import { addReflection } from "./reflection.js";
import type { ServerInterceptor } from "./server-interceptor.js";
import type { GrpcJsService, RpcServer } from "./rpc-server.js";
import { peerIdentityOf } from "../tls/peer-identity.js";

/** Options for createRpcServer. */
export interface RpcServerOptions {
  readonly logger: Logger;
  /** Run around every handler call, first listed outermost. Default none. */
  readonly interceptors?: readonly ServerInterceptor[];
  /** Told of every call, outside the interceptors (metrics). Default none. */
  readonly observer?: CallObserver;
  /** Largest request accepted, in bytes, before and after decompression. Default 4 MiB (gRPC's usual limit). */
  readonly maxReceiveMessageBytes?: number;
  /** Calls (HTTP/2 streams) one connection may have open at once; more wait. Default 100. */
  readonly maxConcurrentStreams?: number;
  /** Largest request metadata (HTTP/2 header list) accepted, in bytes; larger is RESOURCE_EXHAUSTED. Default 16 KiB. */
  readonly maxMetadataBytes?: number;
  /** How long shutdown waits for in-flight calls before cancelling them. Default 10 s. */
  readonly drainTimeoutMs?: number;
  /**
   * Longest a call may run: a call without a deadline, or with a later one,
   * gets this much; its handler's context carries the shorter deadline, and
   * the caller gets DEADLINE_EXCEEDED when it passes. Default: no cap.
   */
  readonly maxDeadlineMs?: number;
  /** Serve grpc.reflection v1 and v1alpha. Default true. */
  readonly reflection?: boolean;
  /** Server TLS; plaintext when absent. */
  readonly credentials?: grpc.ServerCredentials;
  /** Services written for grpc-js's `addService`, hosted as they are. Default none. */
  readonly grpcJsServices?: readonly GrpcJsService[];
}

export type { RpcServer };

/** Hosts services on @grpc/grpc-js, with health checking and reflection. */
export function createRpcServer(options: RpcServerOptions): RpcServer {
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const maxDeadlineMs = options.maxDeadlineMs;
  checkMaxDeadline(maxDeadlineMs);
  const server = new grpc.Server({
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    "grpc.max_concurrent_streams": options.maxConcurrentStreams ?? 100,
  });
  limitHeaderListSize(server, options.maxMetadataBytes ?? 16 * 1024);
  for (const service of options.grpcJsServices ?? []) server.addService(service.definition, service.implementation);
  const dispatcher = createDispatcher({
    logger: options.logger,
    interceptors: options.interceptors ?? [],
    ...(options.observer === undefined ? {} : { observer: options.observer }),
  });
  let health: Health | undefined;

  return {
    dispatcher,
    get health(): Health {
      if (health === undefined) throw new Error("health is available once the server listens");
      return health;
    },
    addService(registration) {
      dispatcher.add(registration);
      const { definition } = registration;
      const grpcDefinition: Record<string, grpc.MethodDefinition<Buffer, unknown>> = {};
      const implementation: grpc.UntypedServiceImplementation = {};
      for (const [key, method] of Object.entries(definition.methods)) {
        const route = dispatcher.route(`/${definition.fullName}/${method.name}`) as Route;
        grpcDefinition[key] = {
          path: `/${definition.fullName}/${method.name}`,
          requestStream: false,
          responseStream: false,
          // Requests are decoded inside the call so that undecodable bytes
          // answer INVALID_ARGUMENT (grpc-js itself would answer INTERNAL).
          requestDeserialize: (bytes: Buffer) => bytes,
          requestSerialize: (bytes: Buffer) => bytes,
          responseSerialize: (response: unknown) => asBuffer(method.responseType.encode(response).finish()),
          responseDeserialize: (bytes: Buffer) => method.responseType.decode(bytes),
          originalName: key,
        };
        const handleUnary: grpc.handleUnaryCall<Buffer, unknown> = (call, callback) => {
          let request: unknown;
          try {
            request = method.requestType.decode(call.request);
          } catch (cause) {
            const error = new RpcError(
              Code.INVALID_ARGUMENT,
              `the request body is not a valid ${definition.name}.${method.name} request`,
              { reason: "MALFORMED_REQUEST", cause },
            );
            return callback(toServiceError(error));
          }
          const { context, finish, abort, capMs } = callContextOf(call, route, maxDeadlineMs);
          let timer: NodeJS.Timeout | undefined;
          const answer = (error: RpcError | undefined, response?: unknown): void => {
            if (!finish()) return;
            clearTimeout(timer);
            if (error === undefined) callback(null, response);
            else callback(toServiceError(error));
          };
          if (capMs !== undefined) {
            // grpc-js enforces only the caller's own deadline; the cap is ours to keep.
            timer = setTimeout(() => {
              const error = maxDeadlineExceeded(capMs);
              abort(error);
              answer(error);
            }, capMs);
            // A caller that gives up first leaves nothing to answer: no timer to keep.
            call.once("cancelled", () => clearTimeout(timer));
          }
          dispatcher.invoke(route, request, context).then(
            (response) => answer(undefined, response),
            (error: RpcError) => answer(error),
          );
        };
        implementation[key] = handleUnary as grpc.UntypedHandleCall;
      }
      server.addService(grpcDefinition as grpc.ServiceDefinition, implementation);
    },
    async listen(address) {
      const names = dispatcher.services.map((s) => s.definition.fullName);
      health = createHealth(names);
      health.addTo(server);
      if (options.reflection ?? true) await addReflection(server, names);
      return new Promise((resolve, reject) => {
        server.bindAsync(address, options.credentials ?? grpc.ServerCredentials.createInsecure(), (error, port) =>
          error ? reject(error) : resolve(port),
        );
      });
    },
    async shutdown() {
      health?.setAllNotServing();
      health?.endWatches();
      dispatcher.draining = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          options.logger.warn({ drainTimeoutMs }, "drain timeout reached; cancelling calls still in flight");
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

/**
 * The call context of a grpc-js call (its deadline capped at `maxDeadlineMs`),
 * `finish` to mark the response sent (false when it already was): grpc-js
 * emits "cancelled" after every response, which must not read as the caller
 * giving up; and `abort` to stop the handler.
 */
function callContextOf(
  call: grpc.ServerUnaryCall<Buffer, unknown>,
  route: Route,
  maxDeadlineMs: number | undefined,
): { context: CallContext; finish(): boolean; abort(reason: RpcError): void; capMs: number | undefined } {
  const deadline = call.getDeadline();
  const clientDeadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const now = Date.now();
  const { timeoutMs, capped } = cappedTimeout(Number.isFinite(clientDeadlineMs) ? clientDeadlineMs - now : undefined, maxDeadlineMs);
  const deadlineMs = timeoutMs === undefined ? Infinity : now + timeoutMs;
  const context = new GrpcJsCallContext(call, `/${route.service.fullName}/${route.method.name}`, timeoutMs === undefined ? undefined : deadlineMs);
  let finished = false;
  call.once("cancelled", () => {
    if (finished) return;
    context.abort(
      Date.now() >= deadlineMs
        ? new RpcError(Code.DEADLINE_EXCEEDED, "the deadline passed")
        : new RpcError(Code.CANCELLED, "the caller cancelled the call"),
    );
  });
  return {
    context,
    finish: () => !finished && (finished = true),
    abort: (reason) => context.abort(reason),
    capMs: capped ? timeoutMs : undefined,
  };
}

class GrpcJsCallContext extends CancellationSource implements CallContext {
  readonly peer: string;
  readonly peerIdentity: string | undefined;
  private converted: Metadata | undefined;

  constructor(
    private readonly call: grpc.ServerUnaryCall<Buffer, unknown>,
    readonly method: string,
    readonly deadline: number | undefined,
  ) {
    super();
    this.peer = call.getPeer();
    // Only a certificate verified against the server's client CA gets here.
    this.peerIdentity = peerIdentityOf(call.getAuthContext().sslPeerCertificate);
  }

  /** Converted on first use: most handlers never read metadata. */
  get metadata(): Metadata {
    this.converted ??= this.call.metadata.getMap();
    return this.converted;
  }

  get traceParent(): string | undefined {
    const [value] = this.call.metadata.get("traceparent");
    return typeof value === "string" ? value : undefined;
  }

  get traceState(): string | undefined {
    const values = this.call.metadata.get("tracestate").filter((value) => typeof value === "string");
    return values.length === 0 ? undefined : values.join(",");
  }
}

/**
 * Makes the server's HTTP/2 sessions refuse request headers (metadata) larger
 * than `bytes` (SETTINGS_MAX_HEADER_LIST_SIZE, enforced by node:http2: the
 * stream is reset with ENHANCE_YOUR_CALM, which callers see as
 * RESOURCE_EXHAUSTED). grpc-js has no option for it (it ignores
 * grpc.max_metadata_size) but passes `commonServerOptions` to
 * http2.createServer and createSecureServer; a grpc-js without that field
 * fails here, loudly, rather than running without the limit.
 */
function limitHeaderListSize(server: grpc.Server, bytes: number): void {
  const internals = server as unknown as { commonServerOptions?: http2.ServerOptions };
  const common = internals.commonServerOptions;
  if (common === undefined) throw new Error("@grpc/grpc-js changed: cannot limit the request metadata size (no commonServerOptions)");
  common.settings = { ...common.settings, maxHeaderListSize: bytes };
}

function toServiceError(error: RpcError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set(STATUS_DETAILS_KEY, asBuffer(encodeStatusDetails(error)));
  return { code: error.code as number as grpc.status, details: error.message, metadata };
}
