import type { CallContext } from "../rpc/call-context.js";
import { ClientError } from "../rpc/client-error.js";
import { Code } from "../rpc/code.js";
import type { RpcError } from "../rpc/rpc-error.js";
import type { Dispatcher } from "../server/dispatcher.js";
import type { Transport } from "./transport.js";

/**
 * Calls services hosted in this same process without a socket, HTTP/2 stream
 * or serialization, through the server's own dispatcher: interceptors,
 * deadline, cancellation, metadata and status codes behave as for a remote
 * call, and the caller receives the same ClientError. Messages are passed by
 * reference; handlers treat requests as read-only.
 */
export function createInProcessTransport(dispatcher: Dispatcher): Transport {
  return {
    unary(service, method, request, options) {
      const path = `/${service.fullName}/${method.name}`;
      const route = dispatcher.route(path);
      if (route === undefined) {
        return Promise.reject(new ClientError(path, Code.UNIMPLEMENTED, `${path} is not hosted in this process`));
      }
      const controller = new AbortController();
      const onAbort = (): void => controller.abort(new ClientError(path, Code.CANCELLED, `the call to ${path} was cancelled`));
      if (options.signal?.aborted) onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      const context: CallContext = {
        method: path,
        deadline: options.deadline,
        signal: controller.signal,
        metadata: options.metadata ?? {},
        peer: "in-process",
      };
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const error = new ClientError(path, Code.DEADLINE_EXCEEDED, `deadline exceeded calling ${path}`);
          controller.abort(error);
          reject(error);
        }, options.deadline - Date.now());
      });
      const cancelled = new Promise<never>((_, reject) => {
        controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
      });
      const result = dispatcher.invoke(route, request, context).catch((error: RpcError) => {
        throw new ClientError(path, error.code, error.message, {
          ...(error.reason === undefined ? {} : { reason: error.reason }),
          metadata: error.metadata,
          fieldViolations: error.fieldViolations,
        });
      });
      return Promise.race([result, expired, cancelled]).finally(() => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      }) as Promise<never>;
    },
    close() {},
  };
}
