// What one CreateOrder costs on the fault suite's cluster: the CPU each
// process spends per call (the load's client in this process, OrderService,
// UserService, PostgreSQL), and the latency, at a given rate. Not a test: a
// measuring tool for choosing SWITCHYARD_FAULT_RATE on a machine.
//
//   sudo node --import tsx test/faults/load-cost.ts [rate …]     (default 250; 10 s each)
//
// The cluster is netns.test.ts's, without the slow pair: etcd, user-a, user-b,
// order-a, order-b, each on a host of its own.
import { execFile } from "node:child_process";
import fs from "node:fs";
import { promisify } from "node:util";
import { Etcd3 } from "etcd3";
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { Cleanup, tempDir } from "../support/cli-process.js";
import { startEtcd } from "../support/etcd.js";
import { cpuSeconds, createNetwork, type Host, netnsUnavailable } from "../support/netns.js";
import { createTestSchema } from "../support/postgres.js";
import { databaseForHosts, serveOn, sleep, startLoad, summarize } from "./cluster.js";

const SECONDS = 10;
const rates = process.argv.slice(2).map(Number);
if (rates.length === 0) rates.push(250);

const unavailable = await netnsUnavailable();
if (unavailable) throw new Error(unavailable);

/** CPU seconds of every process whose name is `postgres`. */
async function postgresCpu(): Promise<number> {
  const { stdout } = await promisify(execFile)("pgrep", ["-x", "postgres"], { encoding: "utf8" }).catch(() => ({ stdout: "" }));
  return stdout
    .split("\n")
    .filter(Boolean)
    .reduce((sum, pid) => sum + (cpuSeconds(Number(pid)) ?? 0), 0);
}

const cleanup = new Cleanup();
try {
  const network = await createNetwork(cleanup);
  const hosts: Host[] = [];
  for (const name of ["etcd", "user-a", "user-b", "order-a", "order-b"]) hosts.push(await network.addHost(name));
  const [etcdHost, userAHost, userBHost, orderAHost, orderBHost] = hosts as [Host, Host, Host, Host, Host];
  const etcd = await startEtcd(cleanup, { host: etcdHost.ip, prefix: ["ip", "netns", "exec", etcdHost.namespace] });
  const kv = new Etcd3({ hosts: etcd.endpoint });
  cleanup.after(() => kv.close());
  const schema = await createTestSchema();
  cleanup.after(() => schema.drop());
  const database = await databaseForHosts(cleanup, network, schema.url);
  const registry = ["--registry", etcd.url];
  const user = async (host: Host): Promise<Awaited<ReturnType<typeof serveOn>>> =>
    serveOn(host, ["--services", "user", "--data-dir", await tempDir(cleanup, "switchyard-load-cost-"), ...registry], { registry: kv });
  const order = async (host: Host): Promise<Awaited<ReturnType<typeof serveOn>>> =>
    serveOn(
      host,
      ["--services", "order", "--user-service", "etcd:///user-service", "--database-url", database.url, "--data-dir", await tempDir(cleanup, "switchyard-load-cost-"), ...registry],
      { env: { GRPC_TRACE: "endpoint_ejection,subchannel", GRPC_VERBOSITY: "DEBUG" }, registry: kv },
    );
  const servers = await Promise.all([user(userAHost), user(userBHost), order(orderAHost), order(orderBHost)]);
  cleanup.after(() => network.close());
  const startCpu = servers.map((server) => cpuSeconds(server.process.pid) ?? 0);
  for (const replica of servers.slice(0, 2)) {
    const transport = createGrpcTransport({ target: replica.address, services: [UserServiceDefinition] });
    await createClient(UserServiceDefinition, transport).createUser({ userId: "u-1", name: "Ada", email: "ada@example.com" });
    transport.close();
  }
  const transport = createGrpcTransport({ target: `static:///${servers[2]?.address},${servers[3]?.address}`, services: [OrderServiceDefinition] });
  cleanup.after(() => transport.close());
  const orders = createClient(OrderServiceDefinition, transport, { defaultTimeoutMs: 5_000 });
  for (let i = 0; i < 50; i++) await orders.createOrder({ orderId: `warm-${i}`, userId: "u-1" });

  for (const rate of rates) {
    const cpuBefore = servers.map((server) => cpuSeconds(server.process.pid) ?? 0);
    const ownBefore = process.cpuUsage();
    const postgresBefore = await postgresCpu();
    const load = startLoad((id) => orders.createOrder({ orderId: id, userId: "u-1" }, { timeoutMs: 5_000 }), {
      rate,
      prefix: `cost-${rate}`,
      maxInFlight: rate * 10,
    });
    await sleep(SECONDS * 1_000);
    // Every call finished: the CPU below is all of theirs, however late they ran.
    await load.stop();
    const summary = summarize(load.records);
    const perCall = (seconds: number): number => Math.round((seconds * 1_000_000) / summary.calls) / 1_000;
    const cpu = servers.map((server, i) => (cpuSeconds(server.process.pid) ?? 0) - (cpuBefore[i] ?? 0));
    const own = process.cpuUsage(ownBefore);
    const msPerCall = {
      loadClient: perCall((own.user + own.system) / 1e6),
      orderService: perCall((cpu[2] ?? 0) + (cpu[3] ?? 0)),
      userService: perCall((cpu[0] ?? 0) + (cpu[1] ?? 0)),
      postgres: perCall((await postgresCpu()) - postgresBefore),
    };
    console.log(
      JSON.stringify({
        rate,
        calls: summary.calls,
        failed: summary.failed,
        p50: summary.p50,
        p99: summary.p99,
        msPerCall: { ...msPerCall, total: Math.round(Object.values(msPerCall).reduce((a, b) => a + b, 0) * 100) / 100 },
        startCpuSeconds: startCpu,
        postgres: database.via,
        loadAverage: fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
      }),
    );
  }
} finally {
  await cleanup.run();
}
