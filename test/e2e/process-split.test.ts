// The two-process topology through the CLI: `serve --services user` and
// `serve --services order --user-service <user process>`.
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { pollUntil, runCli, startServer } from "../support/cli-process.js";

function clientsFor(t: TestContext, userAddress: string, orderAddress: string) {
  const userTransport = createGrpcTransport({ target: userAddress, services: [UserServiceDefinition] });
  const orderTransport = createGrpcTransport({ target: orderAddress, services: [OrderServiceDefinition] });
  // UserService methods sent to the order process, to see that it does not host them.
  const usersAtOrderTransport = createGrpcTransport({ target: orderAddress, services: [UserServiceDefinition] });
  t.after(() => [userTransport, orderTransport, usersAtOrderTransport].forEach((transport) => transport.close()));
  return {
    users: createClient(UserServiceDefinition, userTransport),
    orders: createClient(OrderServiceDefinition, orderTransport),
    usersAtOrderProcess: createClient(UserServiceDefinition, usersAtOrderTransport),
  };
}

async function rejection(promise: Promise<unknown>, what: string): Promise<ClientError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ClientError, `${what}: not a ClientError: ${String(error)}`);
    return error;
  }
  assert.fail(`${what}: succeeded, expected an error`);
}

// The order process's calls to the user process go through the call tunnel by default; the same flow with a stream per call.
for (const extraArgs of [[], ["--no-user-service-tunnel"]]) {
  describe(`switchyard serve: user and order services in two processes${extraArgs.length === 0 ? "" : ` (${extraArgs.join(" ")})`}`, () => {
    it("serves the full flow through the order process, and fails with UNAVAILABLE naming UserService once it is gone", async (t) => {
      const user = await startServer(t, { services: "user" });
      const order = await startServer(t, { services: "order", userService: user.address, extraArgs });
      assert.notEqual(user.port, order.port);
      const listening = order.logs().find((line) => String(line.msg).startsWith("switchyard listening on"));
      assert.deepEqual(listening?.["services"], ["order"]);
      assert.equal(listening?.["userService"], user.address);
      const clients = clientsFor(t, user.address, order.address);

      // Users are created at the user process; the order process does not host UserService.
      const unimplemented = await rejection(
        clients.usersAtOrderProcess.createUser({ userId: "ada", name: "Ada", email: "ada@example.com" }),
        "CreateUser at the order process",
      );
      assert.equal(Code[unimplemented.code], "UNIMPLEMENTED", unimplemented.message);
      const created = await clients.users.createUser({ userId: "ada", name: "Ada", email: "ada@example.com" });
      assert.equal(created.userId, "ada");

      // Orders go through the order process, which checks the user with the user process.
      const first = await clients.orders.createOrder({ orderId: "o-1", userId: "ada" });
      assert.deepEqual(first, { status: "created", userId: "ada", orderId: "o-1" });
      await clients.orders.createOrder({ orderId: "o-2", userId: "ada" });
      const latest = await clients.orders.getOrderByUser({ userId: "ada" });
      assert.ok(["o-1", "o-2"].includes(latest.orderId));
      const listed = await clients.orders.listOrdersByUser({ userId: "ada", limit: 10 });
      assert.deepEqual(listed.orders.map((o) => o.orderId).sort(), ["o-1", "o-2"]);
      assert.ok(
        user.logs().some((line) => line.msg === "call finished" && line["method"] === "service.UserService/GetUser"),
        "the order process asked the user process about the user",
      );

      // A user the user process does not know: the order process says so, not "internal error".
      const unknownUser = await rejection(clients.orders.createOrder({ orderId: "o-3", userId: "bob" }), "CreateOrder for bob");
      assert.equal(Code[unknownUser.code], "FAILED_PRECONDITION", unknownUser.message);
      const noOrders = await rejection(clients.orders.getOrderByUser({ userId: "bob" }), "GetOrderByUser for bob");
      assert.equal(Code[noOrders.code], "NOT_FOUND", noOrders.message);

      // Health of each process names only what it hosts.
      const orderHealth = await runCli(["health", "--address", order.address, "service.OrderService"]);
      assert.equal(orderHealth.stdout, "SERVING\n", orderHealth.stderr);
      const userAtOrder = await runCli(["health", "--address", order.address, "service.UserService"]);
      assert.notEqual(userAtOrder.code, 0, "the order process does not report health for UserService");

      // The user process goes away: CreateOrder fails with UNAVAILABLE naming UserService, not UNKNOWN or INTERNAL.
      const userExit = await user.stop("SIGTERM");
      assert.equal(userExit.code, 0, userExit.stderr);
      const unavailable = await rejection(clients.orders.createOrder({ orderId: "o-4", userId: "ada" }), "CreateOrder without UserService");
      assert.equal(Code[unavailable.code], "UNAVAILABLE", unavailable.message);
      assert.match(unavailable.message, /UserService/);
      assert.equal(unavailable.reason, "DEPENDENCY_UNAVAILABLE");
      const readUnavailable = await rejection(clients.orders.listOrdersByUser({ userId: "ada", limit: 10 }), "ListOrdersByUser without UserService");
      assert.equal(Code[readUnavailable.code], "UNAVAILABLE", readUnavailable.message);
      assert.match(readUnavailable.message, /UserService/);

      // The order process itself is still up, and says what failed in its log.
      assert.equal(order.hasExited, false);
      assert.ok(
        order.logs().some((line) => line.msg === "call finished" && line["method"] === "service.OrderService/CreateOrder" && line["code"] === "UNAVAILABLE"),
      );

      // The user process comes back on the same port and data: orders work again without restarting the order process.
      const userAgain = await startServer(t, { services: "user", port: user.port, dataDir: user.dataDir });
      // The order process's channel reconnects with backoff (grpc-js: 1 s, growing), so poll.
      const again = await pollUntil(
        "CreateOrder through the order process to work again",
        () => clients.orders.createOrder({ orderId: "o-5", userId: "ada" }),
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      assert.equal(again.status, "created");

      const orderExit = await order.stop("SIGTERM");
      assert.equal(orderExit.code, 0, orderExit.stderr);
      await userAgain.stop("SIGTERM");
    });
  });
}
