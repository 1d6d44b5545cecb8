import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { Cleanup, tempDir } from "../support/cli-process.js";
import { createNetwork } from "../support/netns.js";
import { startEtcd } from "../support/etcd.js";
import { serveOn, sleep, startLoad } from "./cluster.js";
const cleanup = new Cleanup();
try {
  const network = await createNetwork(cleanup);
  const etcdHost = await network.addHost("etcd");
  const ua = await network.addHost("user-a");
  const ub = await network.addHost("user-b");
  const oh = await network.addHost("order-a");
  const etcd = await startEtcd(cleanup, { host: etcdHost.ip, prefix: ["ip", "netns", "exec", etcdHost.namespace] });
  const registry = ["--registry", etcd.url];
  const [a, b, order] = await Promise.all([
    serveOn(ua, ["--services", "user", "--data-dir", await tempDir(cleanup), ...registry, "--registry-ttl", "3"]),
    serveOn(ub, ["--services", "user", "--data-dir", await tempDir(cleanup), ...registry, "--registry-ttl", "15"]),
    serveOn(oh, ["--services", "order", "--user-service", "etcd:///user-service", "--data-dir", await tempDir(cleanup), ...registry], { GRPC_TRACE: process.env.TRACE ?? "subchannel,round_robin,pick_first,retrying_call", GRPC_VERBOSITY: "DEBUG" }),
  ]);
  for (const u of [a, b]) {
    const t = createGrpcTransport({ target: u.address, services: [UserServiceDefinition] });
    await createClient(UserServiceDefinition, t).createUser({ userId: "u-1", name: "Ada", email: "a@example.com" });
    t.close();
  }
  const transport = createGrpcTransport({ target: order.address, services: [OrderServiceDefinition], ...(process.env.NORETRY ? { retry: false as const } : {}) });
  const orders = createClient(OrderServiceDefinition, transport, { defaultTimeoutMs: 5_000 });
  for (let i = 0; i < 10; i++) await orders.createOrder({ orderId: `w-${i}`, userId: "u-1" });
  const lines: string[] = [];
  order.process.onLine((l) => lines.push(`${Date.now()} ${l}`));
  const load = startLoad((id) => orders.createOrder({ orderId: id, userId: "u-1" }), { rate: 20, prefix: "x" });
  await sleep(1000);
  const killAt = Date.now();
  a.process.signal("SIGKILL"); b.process.signal("SIGKILL");
  await sleep(4000);
  await load.stop();
  const slow = load.records.filter((r) => r.startedAt >= killAt - 200).sort((x, y) => (y.endedAt - y.startedAt) - (x.endedAt - x.startedAt)).slice(0, 5);
  console.log(slow.map((r) => `${r.startedAt - killAt} +${r.endedAt - r.startedAt} ${r.message}`).join("\n"));
  for (const l of lines) {
    const t = Number(l.split(" ")[0]);
    if (t >= killAt - 100 && t <= killAt + 3000 && !l.includes("call finished")) console.log(t - killAt, l.slice(l.indexOf(" ") + 1, l.indexOf(" ") + 260));
  }
  transport.close();
} finally { await cleanup.run(); }
