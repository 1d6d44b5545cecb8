import type { CallContext } from "../rpc/call-context.js";
import { ClientError } from "../rpc/client-error.js";
import { Code } from "../rpc/code.js";
import type { Metadata } from "../rpc/metadata.js";
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
      const callerSignal = options.signal;
      if (callerSignal?.aborted) return Promise.reject(cancelled(path));
      const context = new InProcessCallContext(path, options.deadline, options.metadata ?? {});
      return new Promise<never>((resolve, reject) => {
        const settle = (): void => {
          clearTimeout(timer);
          callerSignal?.removeEventListener("abort", onCallerAbort);
        };
        const onExpired = (): void => {
          settle();
          const error = new ClientError(path, Code.DEADLINE_EXCEEDED, `deadline exceeded calling ${path}`);
          context.abort(error);
          reject(error);
        };
        const onCallerAbort = (): void => {
          settle();
          const error = cancelled(path);
          context.abort(error);
          reject(error);
        };
        const timer = setTimeout(onExpired, options.deadline - Date.now());
        callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
        dispatcher.invoke(route, request, context).then(
          (response) => {
            settle();
            resolve(response as never);
          },
          (error: RpcError) => {
            settle();
            reject(
              new ClientError(path, error.code, error.message, {
                ...(error.reason === undefined ? {} : { reason: error.reason }),
                metadata: error.metadata,
                fieldViolations: error.fieldViolations,
              }),
            );
          },
        );
      });
    },
    close() {},
  };
}

function cancelled(path: string): ClientError {
  return new ClientError(path, Code.CANCELLED, `the call to ${path} was cancelled`);
}

/**
 * The callee's context. Its signal is made on first use: most handlers never
 * read it, and an AbortController with a listener on the caller's signal
 * costs more than the rest of the call. Members are own properties (the
 * signal an own getter), so that an interceptor's object-spread copy has them all.
 */
class InProcessCallContext implements CallContext {
  readonly peer = "in-process";
  declare readonly signal: AbortSignal;
  private controller: AbortController | undefined;
  private reason: ClientError | undefined;

  constructor(
    readonly method: string,
    readonly deadline: number,
    readonly metadata: Metadata,
  ) {
    Object.defineProperty(this, "signal", {
      enumerable: true,
      get: (): AbortSignal => {
        if (this.controller === undefined) {
          this.controller = new AbortController();
          if (this.reason !== undefined) this.controller.abort(this.reason);
        }
        return this.controller.signal;
      },
    });
  }

  /** The call ended for the caller (deadline, cancellation): the handler should stop. */
  abort(reason: ClientError): void {
    this.reason ??= reason;
    this.controller?.abort(this.reason);
  }
}
