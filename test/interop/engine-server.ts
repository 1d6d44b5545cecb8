/**
 * The engines alone, for load tests: UserService answering from a Map, with
 * no interceptors and no store, on the chosen engine. What is left is the
 * engine's own cost per call (protocol, routing, dispatcher, codec), to
 * compare with bench/baselines/bare-http2.ts under the same h2load.
 *
 * Usage: node --import tsx test/interop/engine-server.ts --engine http2|grpc-js --port N
 */
import { parseArgs } from "node:util";
import { UserServiceDefinition, type UserResponse } from "../../src/gen/service/v1/service.js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { createRpcServer } from "../../src/toolkit/server/grpc-js-server.js";
import { createHttp2RpcServer } from "../../src/toolkit/server/http2/http2-server.js";
import { defineService } from "../../src/toolkit/server/service-registration.js";

const { values } = parseArgs({ options: { engine: { type: "string", default: "http2" }, port: { type: "string", default: "0" } } });
const options = { logger: silentLogger(), drainTimeoutMs: 1_000 };
const server = values.engine === "grpc-js" ? createRpcServer(options) : createHttp2RpcServer(options);
const users = new Map<string, UserResponse>([["u1", { userId: "u1", name: "Ada", email: "ada@example.com" }]]);
server.addService(
  defineService(UserServiceDefinition, {
    async getUser({ userId }) {
      const user = users.get(userId);
      if (user === undefined) throw new RpcError(Code.NOT_FOUND, `no user with id "${userId}"`, { reason: "USER_NOT_FOUND" });
      return user;
    },
    async createUser(request) {
      const user = { userId: request.userId, name: request.name, email: request.email };
      users.set(user.userId, user);
      return user;
    },
  }),
);
const port = await server.listen(`127.0.0.1:${values.port}`);
console.log(`listening on ${port}`);
const stop = (): void => void server.shutdown().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
