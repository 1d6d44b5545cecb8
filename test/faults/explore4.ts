import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { closedPort } from "../support/cli-process.js";
import { sleep, startLoad, summarize } from "./cluster.js";
const [p1, p2] = [await closedPort(), await closedPort()];
for (const od of [true, false, "noretry"]) {
  const t = createGrpcTransport({ target: `static:///127.0.0.1:${p1},127.0.0.1:${p2}`, services: [UserServiceDefinition], ...(od === true ? {} : { outlierDetection: false }), ...(od === "noretry" ? { retry: false as const } : {}) });
  const users = createClient(UserServiceDefinition, t, { defaultTimeoutMs: 5000 });
  const load = startLoad(() => users.getUser({ userId: "x" }), { rate: 20, prefix: "x" });
  await sleep(6000);
  await load.stop();
  const from = load.records[0]?.startedAt ?? 0;
  const bySecond: Record<string, number[]> = {};
  for (const r of load.records) (bySecond[Math.floor((r.startedAt - from) / 1000)] ??= []).push(r.endedAt - r.startedAt);
  console.log("outlier", od, JSON.stringify(summarize(load.records)), Object.entries(bySecond).map(([s, l]) => `${s}:${Math.max(...l)}`).join(" "));
  t.close();
}
