// The access policy engine and the auth interceptor, through a real
// dispatcher and the in-process transport: deny by default, scopes, roles,
// certificate identities, and the principal in the handler's context.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ADMIN_ROLE, ORDER_SERVICE_IDENTITY, switchyardAccessPolicy } from "../../src/app/access-policy.js";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { type AccessPolicy, allow, authorize } from "../../src/toolkit/auth/access-policy.js";
import { authInterceptor, bearerTokenOf } from "../../src/toolkit/auth/auth-interceptor.js";
import { bearerTokenInterceptor } from "../../src/toolkit/auth/bearer-token.js";
import { asInProcessCaller } from "../../src/toolkit/auth/in-process-caller.js";
import { createTokenVerifier } from "../../src/toolkit/auth/token-verifier.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createInProcessTransport } from "../../src/toolkit/client/in-process-transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import type { CallContext } from "../../src/toolkit/rpc/call-context.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { createDispatcher } from "../../src/toolkit/server/dispatcher.js";
import { defineService } from "../../src/toolkit/server/service-registration.js";
import { signToken } from "../support/tokens.js";

const SECRET = new TextEncoder().encode("0123456789abcdef0123456789abcdef");
const POLICY: AccessPolicy = {
  "service.UserService/GetUser": allow.anyOf({ scopes: ["users:read"], roles: ["admin"], identities: ["spiffe://x/orders"] }),
  "service.UserService/CreateUser": allow.authenticated(),
  "grpc.health.v1.Health/Check": allow.anyone(),
};

describe("authorize", () => {
  const alice = { subject: "alice", scopes: ["users:read"], roles: [] };
  const bob = { subject: "bob", scopes: ["orders:read"], roles: [] };
  const code = (decision: ReturnType<typeof authorize>): string => (decision.allowed ? "OK" : Code[decision.error.code]);

  it("denies a method without a rule to everyone, even admins: deny by default", () => {
    const decision = authorize(POLICY, "service.UserService/DeleteUser", { principal: { ...alice, roles: ["admin"] } });
    assert.equal(code(decision), "PERMISSION_DENIED");
    assert.ok(!decision.allowed && decision.error.reason === "NO_ACCESS_RULE");
    assert.equal(code(authorize(POLICY, "toString", {})), "PERMISSION_DENIED", "inherited object keys are no rules");
  });

  it("lets anyone call an open method", () => {
    assert.equal(code(authorize(POLICY, "grpc.health.v1.Health/Check", {})), "OK");
  });

  it("asks a caller without credentials to authenticate: UNAUTHENTICATED", () => {
    assert.equal(code(authorize(POLICY, "service.UserService/GetUser", {})), "UNAUTHENTICATED");
    assert.equal(code(authorize(POLICY, "service.UserService/CreateUser", {})), "UNAUTHENTICATED");
  });

  it("allows by scope, role or identity, and denies an authenticated caller without them: PERMISSION_DENIED", () => {
    assert.equal(code(authorize(POLICY, "service.UserService/GetUser", { principal: alice })), "OK");
    assert.equal(code(authorize(POLICY, "service.UserService/GetUser", { principal: { ...bob, roles: ["admin"] } })), "OK");
    assert.equal(code(authorize(POLICY, "service.UserService/GetUser", { peerIdentity: "spiffe://x/orders" })), "OK");
    const denied = authorize(POLICY, "service.UserService/GetUser", { principal: bob });
    assert.equal(code(denied), "PERMISSION_DENIED");
    assert.ok(!denied.allowed);
    assert.equal(denied.error.message, "service.UserService/GetUser needs scope users:read, role admin or identity spiffe://x/orders; the caller has none of them");
    assert.equal(code(authorize(POLICY, "service.UserService/GetUser", { peerIdentity: "spiffe://x/billing" })), "PERMISSION_DENIED");
  });

  it("lets any authenticated caller call an `authenticated` method, by token or by certificate", () => {
    assert.equal(code(authorize(POLICY, "service.UserService/CreateUser", { principal: bob })), "OK");
    assert.equal(code(authorize(POLICY, "service.UserService/CreateUser", { peerIdentity: "spiffe://x/billing" })), "OK");
  });

  it("Switchyard's policy: OrderService's identity may call GetUser and nothing else", () => {
    const policy = switchyardAccessPolicy();
    const orderService = { peerIdentity: ORDER_SERVICE_IDENTITY };
    for (const method of Object.keys(policy)) {
      const rule = policy[method];
      const expected = method === "service.UserService/GetUser" || rule?.kind === "anyone" ? "OK" : "PERMISSION_DENIED";
      assert.equal(code(authorize(policy, method, orderService)), expected, method);
    }
  });

  it("Switchyard's policy: scopes map onto methods, admin may call all of ours", () => {
    const policy = switchyardAccessPolicy();
    const withScope = (scope: string) => ({ principal: { subject: "s", scopes: [scope], roles: [] } });
    assert.equal(code(authorize(policy, "service.UserService/GetUser", withScope("users:read"))), "OK");
    assert.equal(code(authorize(policy, "service.UserService/CreateUser", withScope("users:read"))), "PERMISSION_DENIED");
    assert.equal(code(authorize(policy, "service.UserService/CreateUser", withScope("users:write"))), "OK");
    assert.equal(code(authorize(policy, "service.OrderService/CreateOrder", withScope("orders:write"))), "OK");
    assert.equal(code(authorize(policy, "service.OrderService/CreateOrder", withScope("orders:read"))), "PERMISSION_DENIED");
    assert.equal(code(authorize(policy, "service.OrderService/GetOrderByUser", withScope("orders:read"))), "OK");
    assert.equal(code(authorize(policy, "service.OrderService/ListOrdersByUser", withScope("orders:read"))), "OK");
    const admin = { principal: { subject: "root", scopes: [], roles: [ADMIN_ROLE] } };
    for (const method of Object.keys(policy).filter((name) => name.startsWith("service."))) {
      assert.equal(code(authorize(policy, method, admin)), "OK", method);
    }
  });

  it("Switchyard's policy: health is open; reflection is open in development, needs a caller in production", () => {
    const reflection = "grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    assert.equal(code(authorize(switchyardAccessPolicy("development"), reflection, {})), "OK");
    assert.equal(code(authorize(switchyardAccessPolicy("production"), reflection, {})), "UNAUTHENTICATED");
    assert.equal(code(authorize(switchyardAccessPolicy("production"), "grpc.health.v1.Health/Check", {})), "OK");
  });
});

describe("bearerTokenOf", () => {
  it("reads `Bearer <token>`, any case, and nothing else", () => {
    assert.equal(bearerTokenOf({ authorization: "Bearer abc.def.ghi" }), "abc.def.ghi");
    assert.equal(bearerTokenOf({ authorization: "bearer abc" }), "abc");
    assert.equal(bearerTokenOf({}), undefined);
    for (const bad of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "abc.def.ghi"]) {
      assert.throws(
        () => bearerTokenOf({ authorization: bad }),
        // One fixed message: nothing of the header comes back.
        (error: RpcError) => error.code === Code.UNAUTHENTICATED && error.message === 'the "authorization" metadata must be "Bearer <JWT>"',
        bad,
      );
    }
  });
});

describe("auth interceptor through the dispatcher", () => {
  function setUp() {
    const seen: CallContext[] = [];
    const dispatcher = createDispatcher({
      logger: silentLogger(),
      interceptors: [authInterceptor({ policy: POLICY, verifier: createTokenVerifier({ secret: SECRET }) })],
    });
    dispatcher.add(
      defineService(UserServiceDefinition, {
        getUser: async (request, context) => {
          seen.push(context);
          return { userId: request.userId, name: "Ada", email: "ada@example.com" };
        },
        createUser: async () => {
          throw new RpcError(Code.INTERNAL, "not used");
        },
      }),
    );
    return { dispatcher, seen };
  }

  it("puts the verified principal in the handler's context", async () => {
    const { dispatcher, seen } = setUp();
    const token = await signToken(SECRET, "HS256", { sub: "alice", scope: "users:read" });
    const client = createClient(UserServiceDefinition, createInProcessTransport(dispatcher), {
      interceptors: [bearerTokenInterceptor(() => token)],
    });
    assert.equal((await client.getUser({ userId: "u1" })).name, "Ada");
    assert.equal(seen[0]?.principal?.subject, "alice");
    assert.deepEqual(seen[0]?.principal?.scopes, ["users:read"]);
  });

  it("answers UNAUTHENTICATED without a token and PERMISSION_DENIED without the scope", async () => {
    const { dispatcher, seen } = setUp();
    const anonymous = createClient(UserServiceDefinition, createInProcessTransport(dispatcher));
    await assert.rejects(anonymous.getUser({ userId: "u1" }), (error: ClientError) => error.code === Code.UNAUTHENTICATED);
    const token = await signToken(SECRET, "HS256", { scope: "orders:read" });
    const wrongScope = createClient(UserServiceDefinition, createInProcessTransport(dispatcher), { interceptors: [bearerTokenInterceptor(token)] });
    await assert.rejects(wrongScope.getUser({ userId: "u1" }), (error: ClientError) => error.code === Code.PERMISSION_DENIED);
    assert.equal(seen.length, 0, "the handler ran for a refused call");
  });

  it("an invalid token is UNAUTHENTICATED even for a caller whose identity would do", async () => {
    const { dispatcher } = setUp();
    const transport = createInProcessTransport(asInProcessCaller(dispatcher, "spiffe://x/orders"));
    const trusted = createClient(UserServiceDefinition, transport);
    assert.equal((await trusted.getUser({ userId: "u1" })).name, "Ada");
    const badToken = createClient(UserServiceDefinition, transport, { interceptors: [bearerTokenInterceptor("not.a.jwt")] });
    await assert.rejects(badToken.getUser({ userId: "u1" }), (error: ClientError) => error.code === Code.UNAUTHENTICATED);
  });

  it("an in-process caller carries the identity it was given, and only that", async () => {
    const { dispatcher, seen } = setUp();
    const asOrders = createClient(UserServiceDefinition, createInProcessTransport(asInProcessCaller(dispatcher, "spiffe://x/orders")));
    await asOrders.getUser({ userId: "u1" });
    assert.equal(seen[0]?.peerIdentity, "spiffe://x/orders");
    assert.equal(seen[0]?.principal, undefined);
    const asBilling = createClient(UserServiceDefinition, createInProcessTransport(asInProcessCaller(dispatcher, "spiffe://x/billing")));
    await assert.rejects(asBilling.getUser({ userId: "u1" }), (error: ClientError) => error.code === Code.PERMISSION_DENIED);
  });
});
