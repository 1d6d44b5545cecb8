import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { Cleanup, tempDir } from "../support/cli-process.js";
import { createNetwork, cpuSeconds } from "../support/netns.js";
import { serveOn, sleep, startLoad, summarize } from "./cluster.js";
const cleanup = new Cleanup();
try {
  const network = await createNetwork(cleanup);
  const userHost = await network.addHost("user-a");
  const user = await serveOn(userHost, ["--services", "user", "--data-dir", await tempDir(cleanup), ...(process.argv[2] ? ["--log-level", process.argv[2]] : [])]);
  const ut = createGrpcTransport({ target: user.address, services: [UserServiceDefinition] });
  const users = createClient(UserServiceDefinition, ut, { defaultTimeoutMs: 2000 });
  await users.createUser({ userId: "u-1", name: "Ada", email: "a@example.com" });
  for (const rate of [100, 300]) {
    const c0 = [cpuSeconds(process.pid) ?? 0, cpuSeconds(user.process.pid) ?? 0]; const t0 = Date.now();
    const load = startLoad(() => users.getUser({ userId: "u-1" }), { rate, prefix: "x" });
    await sleep(4000);
    await load.stop();
    const secs = (Date.now() - t0) / 1000;
    console.log(rate, JSON.stringify(summarize(load.records)), "cpu test", ((cpuSeconds(process.pid) ?? 0) - (c0[0] ?? 0)) / secs, "user", ((cpuSeconds(user.process.pid) ?? 0) - (c0[1] ?? 0)) / secs);
  }
  ut.close();
} finally { await cleanup.run(); }
