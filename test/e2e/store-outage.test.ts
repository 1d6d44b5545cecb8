// A PostgreSQL that goes away under a running server: calls that need it fail
// with UNAVAILABLE (which clients retry) and a message a person can act on,
// the server keeps serving, and it recovers by itself when the database is back.
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { startSwitchyard, type Switchyard } from "../../src/app/switchyard.js";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import type { Transport } from "../../src/toolkit/client/transport.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { createTestSchema, type TestSchema } from "../support/postgres.js";

/** A TCP relay to PostgreSQL that the test can take down (refusing and cutting connections) and bring back on the same port. */
class PostgresRelay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe("a PostgreSQL outage under a running server", () => {
  let schema: TestSchema;
  let relay: PostgresRelay;
  let server: Switchyard;
  let transport: Transport;
  let dataDir: string;

  before(async () => {
    schema = await createTestSchema();
    const url = new URL(schema.url);
    relay = new PostgresRelay({ host: url.hostname, port: Number(url.port || 5432) });
    await relay.up();
    url.host = `127.0.0.1:${relay.port}`;
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-outage-"));
    server = await startSwitchyard({
      services: ["user", "order"],
      host: "127.0.0.1",
      port: 0,
      dataDir,
      databaseUrl: url.toString(),
      drainTimeoutMs: 1_000,
      logger: silentLogger(),
    });
    transport = createGrpcTransport({
      target: `127.0.0.1:${server.port}`,
      services: [UserServiceDefinition, OrderServiceDefinition],
      retry: false,
    });
  });

  after(async () => {
    transport?.close();
    await server?.close();
    await relay?.down();
    await schema?.drop();
    if (dataDir !== undefined) await fs.rm(dataDir, { recursive: true, force: true });
  });

  it("answers UNAVAILABLE with reason STORE_UNAVAILABLE while the database is gone, keeps serving, and recovers when it is back", async () => {
    const users = createClient(UserServiceDefinition, transport);
    const orders = createClient(OrderServiceDefinition, transport);
    await users.createUser({ userId: "outage-user", name: "Ada", email: "ada@example.com" });

    await relay.down();
    await assert.rejects(users.getUser({ userId: "outage-user" }), (error: unknown) => {
      assert.ok(error instanceof ClientError, String(error));
      assert.equal(error.code, Code.UNAVAILABLE, error.message);
      assert.equal(error.reason, "STORE_UNAVAILABLE");
      assert.match(error.message, /database of this service is unavailable right now; retry later/);
      assert.doesNotMatch(error.message, /127\.0\.0\.1|ECONNREFUSED/, "the database's address stays on the server");
      return true;
    });
    // OrderService checks the user first: the hop that failed is named, the status is still UNAVAILABLE.
    await assert.rejects(orders.createOrder({ orderId: "outage-order", userId: "outage-user" }), (error: unknown) => {
      assert.ok(error instanceof ClientError, String(error));
      assert.equal(error.code, Code.UNAVAILABLE, error.message);
      assert.equal(error.reason, "DEPENDENCY_UNAVAILABLE");
      assert.match(error.message, /UserService is unavailable/);
      return true;
    });
    // The server itself is fine: the standard health check still answers.
    assert.equal(await healthStatus(server.port), "SERVING");

    await relay.up();
    assert.deepEqual(await users.getUser({ userId: "outage-user" }), { userId: "outage-user", name: "Ada", email: "ada@example.com" });
    const order = await orders.createOrder({ orderId: "outage-order", userId: "outage-user" });
    assert.equal(order.orderId, "outage-order");
  });
});

/** The overall status the server's grpc.health.v1 Check answers. */
async function healthStatus(port: number): Promise<string> {
  const Health = grpc.makeGenericClientConstructor(healthService, "Health");
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const check = healthService["Check"];
  assert.ok(check);
  try {
    return await new Promise((resolve, reject) => {
      client.makeUnaryRequest(check.path, check.requestSerialize, check.responseDeserialize, { service: "" }, (error, response) =>
        error ? reject(error) : resolve(String((response as { status?: unknown } | undefined)?.status)),
      );
    });
  } finally {
    client.close();
  }
}
