import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { callLogger, createLogger } from "../../src/toolkit/log/logger.js";
import { type CallContext, createCallContext } from "../../src/toolkit/rpc/call-context.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { type CallAnswer, createDispatcher, type Dispatcher, type Route } from "../../src/toolkit/server/dispatcher.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { defineService } from "../../src/toolkit/server/service-registration.js";
import { createTracing } from "../../src/toolkit/telemetry/tracing.js";

/** JSON log lines written so far, once the logger's stream has passed them on. */
function capturing(level: "error" | "warn" = "error") {
  const lines: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => {
    for (const text of chunk.toString("utf8").split("\n")) if (text !== "") lines.push(JSON.parse(text) as Record<string, unknown>);
  });
  return { logger: createLogger({ level, destination: stream }), lines };
}

function context(traceparent?: string): CallContext {
  return createCallContext({
    method: "/service.UserService/GetUser",
    metadata: traceparent === undefined ? {} : { traceparent },
    peer: "test",
  });
}

function dispatcherWith(interceptors: ServerInterceptor[], failure: Error) {
  const log = capturing();
  const dispatcher = createDispatcher({ logger: log.logger, interceptors });
  dispatcher.add(
    defineService(UserServiceDefinition, {
      getUser: async () => {
        throw failure;
      },
      createUser: async () => ({ name: "", email: "", userId: "" }),
    }),
  );
  const route = dispatcher.route("/service.UserService/GetUser");
  assert.ok(route);
  return { dispatcher, route, lines: log.lines };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("the dispatcher's log of unexpected failures", () => {
  it("logs a handler's bug once, with the call's trace and span ids, and answers INTERNAL", async () => {
    const tracing = createTracing({ exporter: { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} } });
    const { dispatcher, route, lines } = dispatcherWith([tracing.serverInterceptor], new Error("a bug"));
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    await assert.rejects(dispatcher.invoke(route, { userId: "u1" }, context(`00-${traceId}-b7ad6b7169203331-01`)), (error: RpcError) => error.code === Code.INTERNAL);
    await flush();
    const failures = lines.filter((line) => line["msg"] === "call failed unexpectedly");
    assert.equal(failures.length, 1);
    assert.equal(failures[0]?.["trace_id"], traceId);
    assert.match(String(failures[0]?.["span_id"]), /^[0-9a-f]{16}$/);
    assert.notEqual(failures[0]?.["span_id"], "b7ad6b7169203331", "the server span's id, not the caller's");
    await tracing.shutdown();
  });

  it("logs a failure an interceptor raised, and none for an expected status", async () => {
    const broken: ServerInterceptor = () => Promise.reject(new TypeError("interceptor bug"));
    const first = dispatcherWith([broken], new Error("unused"));
    await assert.rejects(first.dispatcher.invoke(first.route, { userId: "u1" }, context()));
    const expected = dispatcherWith([], new RpcError(Code.NOT_FOUND, "no such user"));
    await assert.rejects(expected.dispatcher.invoke(expected.route, { userId: "u1" }, context()));
    await flush();
    assert.equal(first.lines.filter((line) => line["msg"] === "call failed unexpectedly").length, 1);
    assert.equal(expected.lines.length, 0);
  });
});

describe("callLogger", () => {
  it("writes the call's trace and span ids on every line, and nothing for a call without a trace", async () => {
    const log = capturing();
    const traced = callLogger(log.logger, context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    traced.error({ userId: "u1" }, "first");
    traced.error("second");
    callLogger(log.logger, context("not a traceparent")).error("third");
    await flush();
    assert.deepEqual(
      log.lines.map((line) => [line["msg"], line["trace_id"], line["span_id"]]),
      [
        ["first", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"],
        ["second", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"],
        ["third", undefined, undefined],
      ],
    );
  });
});

describe("the dispatcher's call observer", () => {
  it("is told of each call's start and of the status its caller gets, outside the interceptors", async () => {
    const seen: string[] = [];
    const dispatcher = createDispatcher({
      logger: capturing().logger,
      interceptors: [
        (call, next) => {
          seen.push("interceptor");
          return call.request === "refused" ? Promise.reject(new RpcError(Code.PERMISSION_DENIED, "no")) : next();
        },
      ],
      observer: {
        observe: (route) => ({
          started: () => {
            seen.push(`started ${route.method.name}`);
            return 7;
          },
          finished: (started, code) => seen.push(`finished ${route.method.name} ${started} ${Code[code]}`),
        }),
      },
    });
    dispatcher.add(
      defineService(UserServiceDefinition, {
        getUser: async () => ({ name: "n", email: "e", userId: "u1" }),
        createUser: async () => {
          throw new Error("a bug");
        },
      }),
    );
    const getUser = dispatcher.route("/service.UserService/GetUser");
    const createUser = dispatcher.route("/service.UserService/CreateUser");
    assert.ok(getUser && createUser);
    await dispatcher.invoke(getUser, { userId: "u1" }, context());
    await assert.rejects(dispatcher.invoke(getUser, "refused", context()));
    await assert.rejects(dispatcher.invoke(createUser, {}, context()));
    assert.deepEqual(seen, [
      "started GetUser",
      "interceptor",
      "finished GetUser 7 OK",
      "started GetUser",
      "interceptor",
      "finished GetUser 7 PERMISSION_DENIED",
      "started CreateUser",
      "interceptor",
      "finished CreateUser 7 INTERNAL",
    ]);
  });
});

describe("the dispatcher's error mapping and call count", () => {
  it("answers what the service's mapError makes of a handler's error, and logs only what stays unexpected", async () => {
    const log = capturing();
    const dispatcher = createDispatcher({ logger: log.logger });
    dispatcher.add(
      defineService(
        UserServiceDefinition,
        {
          getUser: async (request) => {
            throw new Error(request.userId === "missing" ? "not here" : "a bug");
          },
          createUser: async () => ({ name: "", email: "", userId: "" }),
        },
        { mapError: (error) => (error instanceof Error && error.message === "not here" ? new RpcError(Code.NOT_FOUND, "no such user") : error) },
      ),
    );
    const route = dispatcher.route("/service.UserService/GetUser");
    assert.ok(route);
    await assert.rejects(dispatcher.invoke(route, { userId: "missing" }, context()), (error: RpcError) => {
      assert.equal(error.code, Code.NOT_FOUND);
      assert.equal(error.message, "no such user");
      return true;
    });
    await assert.rejects(dispatcher.invoke(route, { userId: "u1" }, context()), (error: RpcError) => error.code === Code.INTERNAL);
    await flush();
    assert.deepEqual(
      log.lines.filter((line) => line["msg"] === "call failed unexpectedly").map((line) => (line["err"] as { message: string }).message),
      ["a bug"],
    );
  });

  it("warns of a failure mapped to UNAVAILABLE with its cause, at most once a second per method", async () => {
    const log = capturing("warn");
    const dispatcher = createDispatcher({ logger: log.logger });
    dispatcher.add(
      defineService(
        UserServiceDefinition,
        {
          getUser: async () => {
            throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
          },
          createUser: async () => ({ name: "", email: "", userId: "" }),
        },
        { mapError: (error) => new RpcError(Code.UNAVAILABLE, "the database is unavailable", { cause: error }) },
      ),
    );
    const route = dispatcher.route("/service.UserService/GetUser");
    assert.ok(route);
    for (let i = 0; i < 3; i++) {
      await assert.rejects(dispatcher.invoke(route, {}, context()), (error: RpcError) => error.code === Code.UNAVAILABLE);
    }
    await flush();
    const warnings = log.lines.filter((line) => line["level"] === 40);
    assert.equal(warnings.length, 1, JSON.stringify(log.lines));
    assert.equal((warnings[0]?.["err"] as { message: string }).message, "connect ECONNREFUSED 127.0.0.1:5432");
    assert.equal(warnings[0]?.["method"], "service.UserService/GetUser");
  });

  it("counts the calls in flight, whether they end in an answer or an error", async () => {
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const dispatcher = createDispatcher({ logger: capturing().logger });
    dispatcher.add(
      defineService(UserServiceDefinition, {
        getUser: async () => {
          await held;
          return { name: "n", email: "e", userId: "u1" };
        },
        createUser: async () => {
          await held;
          throw new RpcError(Code.ALREADY_EXISTS, "taken");
        },
      }),
    );
    const getUser = dispatcher.route("/service.UserService/GetUser");
    const createUser = dispatcher.route("/service.UserService/CreateUser");
    assert.ok(getUser && createUser);
    const calls = [dispatcher.invoke(getUser, {}, context()), dispatcher.invoke(createUser, {}, context()).catch(() => "failed")];
    assert.equal(dispatcher.inFlight, 2);
    release();
    assert.deepEqual(await Promise.all(calls), [{ name: "n", email: "e", userId: "u1" }, "failed"]);
    assert.equal(dispatcher.inFlight, 0);
  });

  it("turns a handler's or an interceptor's synchronous throw into the caller's rejection, observed or not", async () => {
    const finished: Code[] = [];
    const observer = { observe: () => ({ started: () => 0, finished: (_started: number, code: Code) => void finished.push(code) }) };
    const throwingInterceptor: ServerInterceptor = (call, next) => {
      if (call.method === "CreateUser") throw new RpcError(Code.PERMISSION_DENIED, "not you");
      return next();
    };
    for (const options of [{}, { observer }]) {
      const dispatcher = createDispatcher({ logger: capturing().logger, interceptors: [throwingInterceptor], ...options });
      dispatcher.add(
        defineService(UserServiceDefinition, {
          // Not async: the throw happens before any promise exists.
          getUser: () => {
            throw new RpcError(Code.NOT_FOUND, "no such user");
          },
          createUser: async () => ({ name: "", email: "", userId: "" }),
        }),
      );
      const getUser = dispatcher.route("/service.UserService/GetUser");
      const createUser = dispatcher.route("/service.UserService/CreateUser");
      assert.ok(getUser && createUser);
      await assert.rejects(dispatcher.invoke(getUser, {}, context()), { code: Code.NOT_FOUND, message: "no such user" });
      await assert.rejects(dispatcher.invoke(createUser, {}, context()), { code: Code.PERMISSION_DENIED, message: "not you" });
      assert.equal(dispatcher.inFlight, 0);
    }
    assert.deepEqual(finished, [Code.NOT_FOUND, Code.PERMISSION_DENIED]);
  });

  it("serve tells its answer what invoke would resolve or reject with: the response, the mapped error, a refusal while draining", async () => {
    const finished: Code[] = [];
    const observer = { observe: () => ({ started: () => 0, finished: (_started: number, code: Code) => void finished.push(code) }) };
    for (const options of [{}, { observer }]) {
      const dispatcher = createDispatcher({ logger: capturing().logger, ...options });
      dispatcher.add(
        defineService(
          UserServiceDefinition,
          {
            getUser: async (request) => {
              if (request.userId === "missing") throw new Error("not here");
              return { name: "n", email: "e", userId: request.userId };
            },
            createUser: async () => ({ name: "", email: "", userId: "" }),
          },
          { mapError: () => new RpcError(Code.NOT_FOUND, "no such user") },
        ),
      );
      const route = dispatcher.route("/service.UserService/GetUser");
      assert.ok(route);
      const answered = served(dispatcher, route, { userId: "u1" });
      assert.equal(dispatcher.inFlight, 1);
      assert.deepEqual(await answered, { succeeded: { name: "n", email: "e", userId: "u1" } });
      const failed = await served(dispatcher, route, { userId: "missing" });
      assert.ok(failed.failed instanceof RpcError);
      assert.equal(failed.failed.code, Code.NOT_FOUND);
      assert.equal(failed.failed.message, "no such user");
      assert.equal(dispatcher.inFlight, 0);
      dispatcher.draining = true;
      const refused = await served(dispatcher, route, { userId: "u1" });
      assert.equal(refused.failed?.code, Code.UNAVAILABLE);
    }
    assert.deepEqual(finished, [Code.OK, Code.NOT_FOUND]);
  });
});

/** How `dispatcher.serve` answered one call. */
function served(dispatcher: Dispatcher, route: Route, request: unknown): Promise<{ succeeded?: unknown; failed?: RpcError }> {
  return new Promise((resolve) => {
    const answer: CallAnswer = { succeed: (response) => resolve({ succeeded: response }), fail: (error) => resolve({ failed: error }) };
    dispatcher.serve(route, request, context(), answer);
  });
}
