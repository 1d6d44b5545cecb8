// `switchyard serve --workers N`: several processes behind one port, seen
// from outside as one server.
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { type LogLine, pollUntil, startServer, type ServerProcess } from "../support/cli-process.js";

/** A client on a connection of its own (grpc-js would otherwise share one per address). */
function ownConnectionClient(t: { after(fn: () => unknown): void }, server: ServerProcess) {
  const transport = createGrpcTransport({
    target: server.address,
    services: [UserServiceDefinition],
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  t.after(() => transport.close());
  return createClient(UserServiceDefinition, transport);
}

const workersListening = (server: ServerProcess): LogLine[] =>
  server.logs().filter((line) => typeof line.msg === "string" && line.msg.startsWith("worker listening on"));

describe("serve --workers", () => {
  it("serves one port from two worker processes, sharing the SQLite files", async (t) => {
    const server = await startServer(t, { extraArgs: ["--workers", "2"] });
    assert.equal(new Set(workersListening(server).map((line) => line.pid)).size, 2, server.stderr());
    await ownConnectionClient(t, server).createUser({ userId: "u1", name: "Ada", email: "ada@example.com" });
    // Connections are handed to the workers in turn: a few clients reach both.
    for (let i = 0; i < 4; i++) assert.equal((await ownConnectionClient(t, server).getUser({ userId: "u1" })).name, "Ada");
    const servedBy = new Set(server.logs().filter((line) => line.msg === "call finished").map((line) => line.worker));
    assert.equal(servedBy.size, 2, `calls were served by workers ${[...servedBy].join(", ")}`);
    assert.equal((await server.stop()).code, 0);
  });

  it("replaces a worker killed with SIGKILL and keeps serving", async (t) => {
    const server = await startServer(t, { extraArgs: ["--workers", "2"] });
    const victim = Number(workersListening(server)[0]?.pid);
    process.kill(victim, "SIGKILL");
    await server.waitForLog((line) => line.msg === "worker died; starting a new one", "about the dead worker");
    await pollUntil("a replacement worker listening", () => (workersListening(server).length === 3 ? true : undefined), { timeoutMs: 15_000 });
    const client = ownConnectionClient(t, server);
    await client.createUser({ userId: "u2", name: "Grace", email: "grace@example.com" });
    assert.equal((await client.getUser({ userId: "u2" })).name, "Grace");
    assert.equal((await server.stop()).code, 0);
  });

  it("drains every worker on SIGTERM and leaves no process behind", async (t) => {
    const server = await startServer(t, { extraArgs: ["--workers", "2"] });
    const pids = workersListening(server).map((line) => Number(line.pid));
    assert.equal((await server.stop("SIGTERM")).code, 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is still running`);
    assert.equal(server.logs().filter((line) => line.msg === "stopped").length, 2);
  });

  it("refuses --memory, whose data could not be shared between workers", async (t) => {
    await assert.rejects(startServer(t, { extraArgs: ["--workers", "2", "--memory"] }), /cannot be shared by --workers/);
  });
});

describe("serve --workers --metrics-port", () => {
  it("serves every worker's metrics on one endpoint, each series labelled with its worker", async (t) => {
    const server = await startServer(t, { extraArgs: ["--workers", "2", "--metrics-port", "0"] });
    const listening = server.logs().find((line) => typeof line.msg === "string" && line.msg.startsWith("switchyard listening on"));
    const url = /^(http:\/\/\S+\/metrics)/.exec(String(listening?.["metrics"]))?.[1];
    assert.ok(url, `no metrics URL in ${JSON.stringify(listening)}`);
    await ownConnectionClient(t, server).createUser({ userId: "u1", name: "Ada", email: "ada@example.com" });
    const calls = 6;
    for (let i = 0; i < calls; i++) await ownConnectionClient(t, server).getUser({ userId: "u1" });

    const text = await (await fetch(url)).text();
    const handled = [...text.matchAll(/^grpc_server_handled_total\{worker="(\d+)",[^}]*grpc_method="GetUser",grpc_code="OK"\} (\d+)$/gm)];
    assert.equal(new Set(handled.map((match) => match[1])).size, 2, `GetUser counted by both workers:\n${handled.map((m) => m[0]).join("\n")}`);
    assert.equal(handled.reduce((sum, match) => sum + Number(match[2]), 0), calls);
    // One HELP and one TYPE per family, whatever the number of workers.
    assert.equal(text.match(/^# TYPE grpc_server_handled_total /gm)?.length, 1);
    assert.equal((await server.stop()).code, 0);
  });
});
