import * as grpc from "@grpc/grpc-js";
import { silentLogger } from "../../src/toolkit/log/logger.js";
import { createHttp2RpcServer } from "../../src/toolkit/server/http2/http2-server.js";
import { defineService } from "../../src/toolkit/server/service-registration.js";
import { UserServiceDefinition, UserRequest, UserResponse } from "../../src/gen/service/v1/service.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";

const server = createHttp2RpcServer({ logger: silentLogger() });
server.addService(defineService(UserServiceDefinition, {
  getUser: async (r, ctx) => { if (r.userId === "x") throw new RpcError(Code.NOT_FOUND, "no user ünïcode 100%", { reason: "USER_NOT_FOUND" }); return { name: "Ada", email: "a@x", userId: r.userId + JSON.stringify(ctx.metadata) }; },
  createUser: async () => { throw new RpcError(Code.UNIMPLEMENTED, "no"); },
}));
const port = await server.listen("127.0.0.1:0");
const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const call = (id: string) => new Promise((res) => {
  const md = new grpc.Metadata(); md.set("x-a", "b"); md.set("x-b-bin", Buffer.from([1,2,3]));
  client.makeUnaryRequest("/service.UserService/GetUser", (m: UserRequest) => Buffer.from(UserRequest.encode(m).finish()), (b: Buffer) => UserResponse.decode(b), { userId: id }, md, {}, (e, v) => res(e ? { code: e.code, details: e.details, md: e.metadata.getMap() } : v));
});
console.log(await call("u1"));
console.log(await call("x"));
await server.shutdown();
client.close();
