// TEMPORARY: measures what rate the namespace topology sustains.
import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { Cleanup, tempDir } from "../support/cli-process.js";
import { createNetwork, cpuSeconds } from "../support/netns.js";
import { startEtcd } from "../support/etcd.js";
import { createTestSchema, TEST_DATABASE_URL } from "../support/postgres.js";
import { forwardTcp, serveOn, sleep, startLoad, summarize } from "./cluster.js";

const cleanup = new Cleanup();
const mode = process.argv[2] ?? "pg";
const rates = (process.argv[3] ?? "50,100,150").split(",").map(Number);
try {
  const network = await createNetwork(cleanup);
  const etcdHost = await network.addHost("etcd");
  const userHost = await network.addHost("user-a");
  const orderHost = await network.addHost("order-a");
  const etcd = await startEtcd(cleanup, { host: etcdHost.ip, prefix: ["ip", "netns", "exec", etcdHost.namespace] });
  const schema = await createTestSchema();
  cleanup.after(() => schema.drop());
  const database = new URL(TEST_DATABASE_URL);
  const forwarder = await forwardTcp(cleanup, network.gateway, { host: database.hostname, port: Number(database.port || 5432) });
  const orderDatabase = new URL(schema.url);
  orderDatabase.hostname = network.gateway;
  orderDatabase.port = String(forwarder.port);
  const registry = ["--registry", etcd.url];
  const t0 = Date.now();
  const [user, order] = await Promise.all([
    serveOn(userHost, ["--services", "user", "--data-dir", await tempDir(cleanup), ...registry]),
    serveOn(orderHost, [
      "--services",
      "order",
      "--user-service",
      process.argv[4] === "direct" ? `${userHost.ip}:50051` : "etcd:///user-service",
      ...(mode === "pg" ? ["--database-url", orderDatabase.toString()] : []),
      "--data-dir",
      await tempDir(cleanup),
      ...registry,
    ]),
  ]);
  console.log(`started in ${Date.now() - t0} ms`);
  const durations: Record<string, number[]> = { order: [], user: [] };
  for (const [name, server] of [["order", order], ["user", user]] as const) {
    server.process.onLine((line) => {
      const m = /"durationMs":([\d.]+)/.exec(line);
      if (m?.[1]) durations[name]?.push(Number(m[1]));
    });
  }
  const pct = (xs: number[]): string => { const s = [...xs].sort((a, b) => a - b); return `n=${s.length} p50=${s[Math.floor(s.length / 2)]} p99=${s[Math.floor(s.length * 0.99)]}`; };
  const ut = createGrpcTransport({ target: user.address, services: [UserServiceDefinition] });
  await createClient(UserServiceDefinition, ut).createUser({ userId: "u-1", name: "Ada", email: "a@example.com" });
  const transport = createGrpcTransport({ target: order.address, services: [OrderServiceDefinition] });
  const orders = createClient(OrderServiceDefinition, transport, { defaultTimeoutMs: 2_000 });
  for (let i = 0; i < 20; i++) await orders.createOrder({ orderId: `w-${i}`, userId: "u-1" });
  for (const rate of rates) {
    durations.order = []; durations.user = [];
    const cpu0 = [process.pid, user.process.pid, order.process.pid].map((pid) => cpuSeconds(pid) ?? 0);
    const started = Date.now();
    const load = startLoad((id) => orders.createOrder({ orderId: id, userId: "u-1" }), { rate, prefix: `r${rate}` });
    await sleep(5_000);
    await load.stop();
    const seconds = (Date.now() - started) / 1000;
    const cpu = [process.pid, user.process.pid, order.process.pid].map((pid, i) => Math.round(((cpuSeconds(pid) ?? 0) - (cpu0[i] ?? 0)) / seconds * 100));
    console.log(rate, JSON.stringify(summarize(load.records)), "cpu% test,user,order", cpu.join(","), "server-side order", pct(durations.order ?? []), "user", pct(durations.user ?? []));
  }
  console.log(order.process.stderr().split("\n").filter((l) => /"level":(40|50)/.test(l)).slice(0, 5).join("\n"));
  transport.close();
  ut.close();
} finally {
  await cleanup.run();
}
