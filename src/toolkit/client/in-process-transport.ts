import type { CallContext } from "../rpc/call-context.js";
import { observeRefused } from "../rpc/call-observer.js";
import { CancellationSource } from "../rpc/cancellation.js";
import { ClientError } from "../rpc/client-error.js";
import { Code } from "../rpc/code.js";
import { type Metadata, textValue } from "../rpc/metadata.js";
import { RpcError } from "../rpc/rpc-error.js";
import type { MethodDefinition } from "../rpc/definition.js";
import type { Dispatcher, Route } from "../server/dispatcher.js";
import type { Transport } from "./transport.js";

/** Largest delay setTimeout takes; a later deadline would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Calls services hosted in this same process without a socket, HTTP/2 stream
 * or serialization, through the server's own dispatcher: interceptors,
 * deadline, cancellation, metadata and status codes behave as for a remote
 * call, and the caller receives the same ClientError. Messages are passed by
 * reference; handlers treat requests as read-only.
 */
export function createInProcessTransport(dispatcher: Dispatcher): Transport {
  // Looked up by method object rather than by a path string built per call.
  const routes = new Map<MethodDefinition<unknown, unknown>, { readonly path: string; readonly route: Route }>();
  return {
    unary(service, method, request, options) {
      let known = routes.get(method as MethodDefinition<unknown, unknown>);
      if (known === undefined) {
        const path = `/${service.fullName}/${method.name}`;
        const route = dispatcher.route(path);
        if (route === undefined) {
          observeRefused(options.observer, Code.UNIMPLEMENTED);
          return Promise.reject(new ClientError(path, Code.UNIMPLEMENTED, `${path} is not hosted in this process`));
        }
        known = { path, route };
        routes.set(method as MethodDefinition<unknown, unknown>, known);
      }
      const { path, route } = known;
      const { observer } = options;
      const started = observer === undefined ? 0 : observer.started();
      const caller = options.cancellation;
      if (caller !== undefined && caller.abortReason !== undefined) {
        observer?.finished(started, Code.CANCELLED);
        return Promise.reject(cancelled(path));
      }
      return new Promise<never>((resolve, reject) => {
        let settled = false;
        const settle = (code: Code): void => {
          settled = true;
          clearTimeout(timer);
          caller?.removeAbortListener(onCallerAbort);
          observer?.finished(started, code);
        };
        // The callee learns why its caller stopped waiting as a server would
        // (an RpcError of its own), the caller as a client does (a ClientError
        // naming the method): each side's error then blames the right hop.
        const onExpired = (): void => {
          settle(Code.DEADLINE_EXCEEDED);
          callee.abort(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded"));
          reject(new ClientError(path, Code.DEADLINE_EXCEEDED, `deadline exceeded calling ${path}`));
        };
        const onCallerAbort = (): void => {
          settle(Code.CANCELLED);
          callee.abort(new RpcError(Code.CANCELLED, "the caller cancelled the call"));
          reject(cancelled(path));
        };
        caller?.addAbortListener(onCallerAbort);
        const callee = new InProcessCallContext(path, options.deadline, options.metadata ?? {});
        const timer = setTimeout(onExpired, Math.min(MAX_TIMER_MS, Math.max(0, options.deadline - Date.now())));
        dispatcher.invoke(route, request, callee).then(
          (response) => {
            if (settled) return;
            settle(Code.OK);
            resolve(response as never);
          },
          (error: RpcError) => {
            if (settled) return;
            settle(error.code);
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
 * read it, and an AbortController costs more than the rest of the call. A
 * class, not an object literal, which V8 builds ten times slower.
 */
class InProcessCallContext extends CancellationSource implements CallContext {
  readonly peer = "in-process";

  constructor(
    readonly method: string,
    readonly deadline: number,
    readonly metadata: Metadata,
  ) {
    super();
  }

  get traceParent(): string | undefined {
    return textValue(this.metadata, "traceparent");
  }

  get traceState(): string | undefined {
    return textValue(this.metadata, "tracestate");
  }
}
