import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { configName, ENGINES, startSystem, type System, type Topology } from "../support/system.js";

/** The seed's original contract, as its clients have it. */
const SEED_PROTO = fileURLToPath(new URL("../../contracts/seed/service.proto", import.meta.url));

/** The seed clients' loader settings: proto field names, defaults filled in. */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, defaults: true, longs: String, enums: String };

type Callback = (error: grpc.ServiceError | null, response?: unknown) => void;
type UnaryMethod = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback) => void;

/** A client for one seed service, built at run time by @grpc/grpc-js from the loaded .proto. */
interface SeedClient {
  call(method: string, request: object): Promise<Record<string, unknown>>;
  close(): void;
}

function isServiceConstructor(value: unknown): value is grpc.ServiceClientConstructor {
  return typeof value === "function" && "service" in value;
}

function seedClient(service: "UserService" | "OrderService", address: string): SeedClient {
  const definition = protoLoader.loadSync(SEED_PROTO, LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition);
  const pkg = loaded.service;
  assert.ok(pkg !== undefined && typeof pkg === "object", "the seed proto has no package `service`");
  const Constructor: unknown = (pkg as grpc.GrpcObject)[service];
  assert.ok(isServiceConstructor(Constructor), `the seed proto has no service ${service}`);
  const client = new Constructor(address, grpc.credentials.createInsecure());
  return {
    call(method, request) {
      const fn: unknown = client[method];
      assert.equal(typeof fn, "function", `the seed's ${service} has no method ${method}`);
      const unary = (fn as UnaryMethod).bind(client);
      return new Promise((resolve, reject) => {
        unary(request, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (error, response) => {
          if (error) reject(error);
          else resolve(response as Record<string, unknown>);
        });
      });
    },
    close: () => client.close(),
  };
}

const TOPOLOGIES: readonly Topology[] = ["single", "split"];

for (const [topology, engine] of TOPOLOGIES.flatMap((t) => ENGINES.map((e) => [t, e] as const))) {
  const config = { topology, store: "sqlite", engine } as const;
  describe(`a client built from the seed's original proto, ${configName(config)}`, () => {
    let system: System | undefined;
    let users: SeedClient | undefined;
    let orders: SeedClient | undefined;
    const sys = (): System => {
      assert.ok(system, "the system did not start");
      return system;
    };
    const seedUsers = (): SeedClient => {
      assert.ok(users);
      return users;
    };
    const seedOrders = (): SeedClient => {
      assert.ok(orders);
      return orders;
    };

    before(async () => {
      system = await startSystem(config);
      users = seedClient("UserService", system.userAddress);
      orders = seedClient("OrderService", system.orderAddress);
    });
    after(async () => {
      users?.close();
      orders?.close();
      await system?.close();
    });

    it("reads a user with GetUser and sees exactly the seed's fields, name and email", async () => {
      const userId = `user-${randomUUID()}`;
      await sys().user.createUser({ userId, name: "Ada Lovelace", email: "ada@example.com" });
      const response = await seedUsers().call("GetUser", { user_id: userId });
      // user_id (field 3) is new since the seed: its clients skip it as an unknown field.
      assert.deepEqual(response, { name: "Ada Lovelace", email: "ada@example.com" });
    });

    it("gets NOT_FOUND from GetUser for an unknown user", async () => {
      await assert.rejects(seedUsers().call("GetUser", { user_id: `nobody-${randomUUID()}` }), (error: unknown) => {
        assert.equal((error as grpc.ServiceError).code, grpc.status.NOT_FOUND);
        return true;
      });
    });

    it("places an order with CreateOrder and reads it with GetOrderByUser, seeing status and user_id only", async () => {
      const userId = `user-${randomUUID()}`;
      await sys().user.createUser({ userId, name: "Ada Lovelace", email: "ada@example.com" });
      const orderId = `order-${randomUUID()}`;
      const created = await seedOrders().call("CreateOrder", { order_id: orderId, user_id: userId });
      // order_id (field 3) is new since the seed: ignored by the seed's clients.
      assert.deepEqual(created, { status: "created", user_id: userId });
      const latest = await seedOrders().call("GetOrderByUser", { user_id: userId });
      assert.deepEqual(latest, { status: "created", user_id: userId });
      // The order the seed client placed is the one the server stored.
      assert.equal((await sys().order.getOrderByUser({ userId })).orderId, orderId);
    });

    it("gets FAILED_PRECONDITION from CreateOrder for an unknown user", async () => {
      const request = { order_id: `order-${randomUUID()}`, user_id: `nobody-${randomUUID()}` };
      await assert.rejects(seedOrders().call("CreateOrder", request), (error: unknown) => {
        assert.equal((error as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
        return true;
      });
    });
  });
}
