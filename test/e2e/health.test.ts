import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { startSwitchyard } from "../../src/app/switchyard.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { ENGINES } from "../support/system.js";

/** Calls a unary grpc.health.v1 method with grpc-health-check's client definition (a client we did not write). */
function callHealth(client: grpc.Client, method: "Check" | "List", request: object): Promise<unknown> {
  const definition = healthService[method];
  assert.ok(definition, `grpc-health-check has no ${method} method`);
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(definition.path, definition.requestSerialize, definition.responseDeserialize, request, (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );
}

for (const engine of ENGINES) {
  describe(`health checks on the ${engine} engine`, () => {
    it("Check and List report SERVING for the server and each service, and Check answers NOT_FOUND for a service not hosted", async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), "switchyard-health-"));
      const app = await startSwitchyard({ services: ["user"], host: "127.0.0.1", port: 0, dataDir, engine, logger: silentLogger() });
      const Health = grpc.makeGenericClientConstructor(healthService, "Health");
      const client = new Health(`127.0.0.1:${app.port}`, grpc.credentials.createInsecure());
      try {
        assert.deepEqual(await callHealth(client, "Check", { service: "" }), { status: "SERVING" });
        assert.deepEqual(await callHealth(client, "Check", { service: "service.UserService" }), { status: "SERVING" });
        assert.deepEqual(await callHealth(client, "List", {}), {
          statuses: { "": { status: "SERVING" }, "service.UserService": { status: "SERVING" } },
        });
        await assert.rejects(callHealth(client, "Check", { service: "service.OrderService" }), (error: grpc.ServiceError) => {
          assert.equal(error.code, grpc.status.NOT_FOUND);
          assert.match(error.details, /service\.OrderService/);
          return true;
        });
      } finally {
        client.close();
        await app.close();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });

  describe(`health during shutdown on the ${engine} engine`, () => {
    it("tells a watcher NOT_SERVING once, then ends its stream instead of holding the drain open", async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), "switchyard-health-"));
      const app = await startSwitchyard({
        services: ["user", "order"],
        host: "127.0.0.1",
        port: 0,
        dataDir,
        engine,
        drainTimeoutMs: 20_000,
        logger: silentLogger(),
      });
      const Health = grpc.makeGenericClientConstructor(healthService, "Health");
      const client = new Health(`127.0.0.1:${app.port}`, grpc.credentials.createInsecure());
      const watch = healthService["Watch"];
      assert.ok(watch);
      try {
        const statuses: string[] = [];
        const stream = client.makeServerStreamRequest(
          watch.path,
          watch.requestSerialize,
          watch.responseDeserialize,
          { service: "" },
          new grpc.Metadata(),
          {},
        );
        const ended = new Promise<void>((resolve) => {
          stream.on("error", () => resolve());
          stream.on("end", () => resolve());
        });
        const first = new Promise<void>((resolve) =>
          stream.on("data", (message: { status?: unknown }) => {
            statuses.push(String(message.status));
            resolve();
          }),
        );
        await first;
        const started = Date.now();
        await app.close();
        await ended;
        assert.ok(Date.now() - started < 5_000, `shutdown took ${Date.now() - started} ms with a watcher open`);
        assert.deepEqual(statuses, ["SERVING", "NOT_SERVING"]);
      } finally {
        client.close();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
}
