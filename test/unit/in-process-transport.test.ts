import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createInProcessTransport } from "../../src/toolkit/client/in-process-transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import type { CallContext } from "../../src/toolkit/rpc/call-context.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { createDispatcher } from "../../src/toolkit/server/dispatcher.js";
import type { ServerInterceptor } from "../../src/toolkit/server/server-interceptor.js";
import { defineService } from "../../src/toolkit/server/service-registration.js";

function userServiceWith(getUser: (userId: string, context: CallContext) => Promise<void>, interceptors: ServerInterceptor[] = []) {
  const dispatcher = createDispatcher({ logger: silentLogger(), interceptors });
  dispatcher.add(
    defineService(UserServiceDefinition, {
      getUser: async (request, context) => {
        await getUser(request.userId, context);
        return { name: "Ada", email: "ada@example.com", userId: request.userId };
      },
      createUser: async () => {
        throw new RpcError(Code.UNIMPLEMENTED, "not in this test");
      },
    }),
  );
  return { dispatcher, client: createClient(UserServiceDefinition, createInProcessTransport(dispatcher)) };
}

describe("in-process transport", () => {
  it("answers through the handler with the typed response", async () => {
    const { client } = userServiceWith(async () => {});
    assert.deepEqual(await client.getUser({ userId: "u1" }), { name: "Ada", email: "ada@example.com", userId: "u1" });
  });

  it("runs the server's interceptors, as a remote call would", async () => {
    const seen: string[] = [];
    const { client } = userServiceWith(async () => {}, [
      async (call, next) => {
        seen.push(`${call.service}/${call.method} from ${call.context.peer}`);
        return next();
      },
    ]);
    await client.getUser({ userId: "u1" });
    assert.deepEqual(seen, ["service.UserService/GetUser from in-process"]);
  });

  it("delivers the handler's status, reason and field violations as a ClientError", async () => {
    const { client } = userServiceWith(async () => {
      throw new RpcError(Code.NOT_FOUND, "no user", { reason: "USER_NOT_FOUND", fieldViolations: [{ field: "user_id", description: "x" }] });
    });
    const error = await client.getUser({ userId: "u1" }).catch((e: unknown) => e);
    assert.ok(error instanceof ClientError);
    assert.equal(error.code, Code.NOT_FOUND);
    assert.equal(error.reason, "USER_NOT_FOUND");
    assert.equal(error.method, "/service.UserService/GetUser");
    assert.deepEqual(error.fieldViolations, [{ field: "user_id", description: "x" }]);
  });

  it("enforces the deadline and aborts the handler's signal when it passes", async () => {
    let handlerSignal: AbortSignal | undefined;
    const { client } = userServiceWith(
      (_id, context) =>
        new Promise((resolve) => {
          handlerSignal = context.signal;
          context.signal.addEventListener("abort", () => resolve(), { once: true });
        }),
    );
    const started = Date.now();
    const error = await client.getUser({ userId: "u1" }, { timeoutMs: 50 }).catch((e: unknown) => e);
    assert.ok(error instanceof ClientError);
    assert.equal(error.code, Code.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - started < 1_000);
    assert.equal(handlerSignal?.aborted, true);
  });

  it("cancels the handler when the caller aborts", async () => {
    const caller = new AbortController();
    let handlerSignal: AbortSignal | undefined;
    const { client } = userServiceWith(
      (_id, context) =>
        new Promise((resolve) => {
          handlerSignal = context.signal;
          caller.abort();
          context.signal.addEventListener("abort", () => resolve(), { once: true });
        }),
    );
    const error = await client.getUser({ userId: "u1" }, { signal: caller.signal }).catch((e: unknown) => e);
    assert.ok(error instanceof ClientError);
    assert.equal(error.code, Code.CANCELLED);
    assert.equal(handlerSignal?.aborted, true);
  });

  it("refuses calls with UNAVAILABLE while the server drains", async () => {
    const { client, dispatcher } = userServiceWith(async () => {});
    dispatcher.draining = true;
    const error = await client.getUser({ userId: "u1" }).catch((e: unknown) => e);
    assert.ok(error instanceof ClientError);
    assert.equal(error.code, Code.UNAVAILABLE);
  });

  it("hides an unexpected exception behind INTERNAL, as over the network", async () => {
    const { client } = userServiceWith(async () => {
      throw new Error("SELECT password FROM users");
    });
    const error = await client.getUser({ userId: "u1" }).catch((e: unknown) => e);
    assert.ok(error instanceof ClientError);
    assert.equal(error.code, Code.INTERNAL);
    assert.equal(error.message, "internal error");
  });
});
