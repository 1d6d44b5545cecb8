import { OrderServiceDefinition, UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import { createGrpcTransport } from "../../src/toolkit/client/grpc-js-transport.js";
import { Cleanup, startServer } from "../support/cli-process.js";
import { createTestSchema } from "../support/postgres.js";
import { sleep, startLoad, summarize } from "./cluster.js";
const cleanup = new Cleanup();
try {
  const schema = await createTestSchema();
  cleanup.after(() => schema.drop());
  const user = await startServer(cleanup, { services: "user" });
  const order = await startServer(cleanup, { services: "order", userService: user.address, ...(process.argv[2] === "pg" ? { databaseUrl: schema.url } : {}) });
  const ut = createGrpcTransport({ target: user.address, services: [UserServiceDefinition] });
  await createClient(UserServiceDefinition, ut).createUser({ userId: "u-1", name: "Ada", email: "a@example.com" });
  const transport = createGrpcTransport({ target: order.address, services: [OrderServiceDefinition] });
  const orders = createClient(OrderServiceDefinition, transport, { defaultTimeoutMs: 2_000 });
  for (let i = 0; i < 20; i++) await orders.createOrder({ orderId: `w-${i}`, userId: "u-1" });
  for (const rate of [10, 50, 100]) {
    const load = startLoad((id) => orders.createOrder({ orderId: id, userId: "u-1" }), { rate, prefix: `r${rate}` });
    await sleep(4_000);
    await load.stop();
    console.log(rate, JSON.stringify(summarize(load.records)));
  }
  transport.close(); ut.close();
} finally { await cleanup.run(); }
