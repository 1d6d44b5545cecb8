/**
 * A server for the interoperability suites: UserService with a test
 * implementation whose behaviour is chosen by the request's user id, hosted
 * on either engine, and a log of what handlers saw (aborted signals,
 * metadata, deadlines) for the assertions.
 */
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { CreateUserRequest, UserRequest, UserResponse, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import type { CallContext } from "../../src/toolkit/rpc/call-context.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { invalidArgument, RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { createRpcServer } from "../../src/toolkit/server/grpc-js-server.js";
import { createHttp2RpcServer } from "../../src/toolkit/server/http2/http2-server.js";
import type { RpcServer } from "../../src/toolkit/server/rpc-server.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import type { ServerTls } from "../../src/toolkit/tls/server-tls.js";
import { defineService } from "../../src/toolkit/server/service-registration.js";

/** The two server implementations. */
export type Engine = "grpc-js" | "http2";
export const ENGINES: readonly Engine[] = ["http2", "grpc-js"];

export const GET_USER = "/service.UserService/GetUser";
export const CREATE_USER = "/service.UserService/CreateUser";

/** The message of the `unicode` user's error: non-ASCII, '%', and a line break, all of which grpc-message must percent-encode. */
export const UNICODE_MESSAGE = "naïve café: 100% ünïcödé ✓\nsecond line";

/** What the test handlers noticed, in order: a call started, or its signal aborted (with the reason's code). */
export type HandlerEvent = { readonly userId: string; readonly kind: "started" } | { readonly userId: string; readonly kind: "aborted"; readonly code: Code };

/** A started test server. */
export interface TestServer {
  readonly engine: Engine;
  readonly server: RpcServer;
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  readonly events: HandlerEvent[];
  /** Resolves at the first event of `kind` for `userId` recorded after `since` events (default: from the first). */
  nextEvent(userId: string, kind: HandlerEvent["kind"], since?: number): Promise<HandlerEvent>;
  close(): Promise<void>;
}

/** Options for startTestServer. */
export interface TestServerOptions {
  readonly maxReceiveMessageBytes?: number;
  readonly drainTimeoutMs?: number;
  /** The server's deadline cap. Default none. */
  readonly maxDeadlineMs?: number;
  readonly interceptors?: readonly ServerInterceptor[];
  /** Serve TLS with these (from loadServerTls), reloads included. */
  readonly tls?: ServerTls;
}

/**
 * Starts UserService on `engine`. GetUser behaves by user id:
 * - `missing`: NOT_FOUND with reason USER_NOT_FOUND;
 * - `invalid`: INVALID_ARGUMENT with a field violation;
 * - `unicode`: FAILED_PRECONDITION with UNICODE_MESSAGE;
 * - `slow…`: waits until its signal aborts (deadline, cancellation, shutdown);
 * - `sleep:N`: answers after N ms;
 * - `metadata`: returns the metadata it received as JSON in `name` (bytes as hex);
 * - `deadline`: returns the milliseconds left before its deadline in `email` (`none` without one);
 * - `big:N`: returns a name of N bytes;
 * - anything else: Ada.
 * CreateUser echoes the request, with the name's length in `name`.
 */
export async function startTestServer(engine: Engine, options: TestServerOptions = {}): Promise<TestServer> {
  const events: HandlerEvent[] = [];
  const waiters: { userId: string; kind: HandlerEvent["kind"]; resolve: (event: HandlerEvent) => void }[] = [];
  const record = (event: HandlerEvent): void => {
    events.push(event);
    for (const waiter of waiters.filter((w) => w.userId === event.userId && w.kind === event.kind)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  };
  const watchSignal = (userId: string, context: CallContext): void => {
    record({ userId, kind: "started" });
    context.signal.addEventListener("abort", () => {
      const reason: unknown = context.signal.reason;
      record({ userId, kind: "aborted", code: reason instanceof RpcError ? reason.code : Code.UNKNOWN });
    });
  };
  const serverOptions = {
    logger: silentLogger(),
    drainTimeoutMs: options.drainTimeoutMs ?? 1_000,
    interceptors: options.interceptors ?? [],
    ...(options.maxReceiveMessageBytes === undefined ? {} : { maxReceiveMessageBytes: options.maxReceiveMessageBytes }),
    ...(options.maxDeadlineMs === undefined ? {} : { maxDeadlineMs: options.maxDeadlineMs }),
  };
  const tls = options.tls;
  const server =
    engine === "http2"
      ? createHttp2RpcServer({ ...serverOptions, ...(tls ? { tls: tls.secureServerOptions(), onTlsReload: tls.onReload } : {}) })
      : createRpcServer({ ...serverOptions, ...(tls ? { credentials: tls.credentials } : {}) });
  server.addService(
    defineService(UserServiceDefinition, {
      async getUser({ userId }, context) {
        watchSignal(userId, context);
        if (userId === "missing") {
          throw new RpcError(Code.NOT_FOUND, `no user with id "${userId}"`, { reason: "USER_NOT_FOUND", metadata: { userId } });
        }
        if (userId === "invalid") throw invalidArgument([{ field: "user_id", description: 'must not be "invalid"' }]);
        if (userId === "unicode") throw new RpcError(Code.FAILED_PRECONDITION, UNICODE_MESSAGE);
        if (userId.startsWith("slow")) {
          await new Promise((_, reject) => context.signal.addEventListener("abort", () => reject(context.signal.reason)));
        }
        if (userId.startsWith("sleep:")) await new Promise((resolve) => setTimeout(resolve, Number(userId.slice(6))));
        if (userId === "metadata") {
          const seen = Object.fromEntries(
            Object.entries(context.metadata).map(([key, value]) => [key, typeof value === "string" ? value : `hex:${Buffer.from(value).toString("hex")}`]),
          );
          return { name: JSON.stringify(seen), email: "", userId };
        }
        if (userId === "deadline") {
          return { name: "", email: context.deadline === undefined ? "none" : String(context.deadline - Date.now()), userId };
        }
        if (userId.startsWith("big:")) return { name: "x".repeat(Number(userId.slice(4))), email: "", userId };
        return { name: "Ada", email: "ada@example.com", userId };
      },
      async createUser(request) {
        return { name: String(request.name.length), email: request.email, userId: request.userId };
      },
    }),
  );
  const port = await server.listen("127.0.0.1:0");
  return {
    engine,
    server,
    port,
    address: `127.0.0.1:${port}`,
    events,
    nextEvent: (userId, kind, since = 0) => {
      const seen = events.slice(since).find((event) => event.userId === userId && event.kind === kind);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ userId, kind, resolve }));
    },
    close: () => server.shutdown(),
  };
}

/** The outcome of one raw grpc-js unary call. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: grpc.ServiceError };

/** Calls options for the raw grpc-js helpers. */
export interface RawCallOptions {
  readonly metadata?: grpc.Metadata;
  readonly deadline?: Date;
  /** Cancels the call when this settles. */
  readonly cancelWhen?: Promise<unknown>;
}

function raw<Req, Res>(
  client: grpc.Client,
  path: string,
  serialize: (request: Req) => Buffer,
  deserialize: (bytes: Buffer) => Res,
  request: Req,
  options: RawCallOptions,
): Promise<Outcome<Res>> {
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest(
      path,
      serialize,
      deserialize,
      request,
      options.metadata ?? new grpc.Metadata(),
      options.deadline === undefined ? {} : { deadline: options.deadline },
      (error, value) => resolve(error ? { ok: false, error } : { ok: true, value: value as Res }),
    );
    void options.cancelWhen?.then(() => call.cancel());
  });
}

/** GetUser through a plain @grpc/grpc-js client (not Switchyard's client wrapper). */
export function getUser(client: grpc.Client, userId: string, options: RawCallOptions = {}): Promise<Outcome<UserResponse>> {
  return raw(client, GET_USER, (r: UserRequest) => Buffer.from(UserRequest.encode(r).finish()), (b) => UserResponse.decode(b), { userId }, options);
}

/** CreateUser through a plain @grpc/grpc-js client. */
export function createUser(client: grpc.Client, request: CreateUserRequest, options: RawCallOptions = {}): Promise<Outcome<UserResponse>> {
  return raw(client, CREATE_USER, (r: CreateUserRequest) => Buffer.from(CreateUserRequest.encode(r).finish()), (b) => UserResponse.decode(b), request, options);
}

/** Sends `body` verbatim as the request message of `path`. */
export function rawCall(client: grpc.Client, path: string, body: Buffer, options: RawCallOptions = {}): Promise<Outcome<Buffer>> {
  return raw(client, path, (b: Buffer) => b, (b) => b, body, options);
}

/** Asserts a failed outcome and returns its error. */
export function failure<T>(outcome: Outcome<T>): grpc.ServiceError {
  if (outcome.ok) throw new Error(`expected the call to fail, got ${JSON.stringify(outcome.value).slice(0, 200)}`);
  return outcome.error;
}

/** Asserts a successful outcome and returns its value. */
export function success<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw new Error(`expected the call to succeed, got ${outcome.error.code} ${outcome.error.details}`);
  return outcome.value;
}

/** The ClientError a call of our clients failed with; fails the test if it succeeded. */
export async function rejection(promise: Promise<unknown>): Promise<ClientError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ClientError, `a ClientError, not ${String(error)}`);
    return error;
  }
  assert.fail("expected the call to fail");
}
