/**
 * The naive port of the seed: @grpc/grpc-js with @grpc/proto-loader loading
 * the seed's own proto at run time, data in in-memory maps, and
 * OrderService calling UserService through a grpc-js client over loopback,
 * exactly as the seed's Go code dials localhost from inside the server.
 * The seed's contract has no CreateUser, so the benchmark's user is put in
 * the map at startup.
 *
 * Usage: node bench/baselines/naive-grpc-js.ts --port N [--host H] --proto FILE
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { parseArgs } from "node:util";
import { BENCH_USER } from "../fixtures.js";

interface UserRequest {
  user_id: string;
}
interface UserResponse {
  name: string;
  email: string;
}
interface OrderRequest {
  order_id: string;
  user_id: string;
}
interface OrderResponse {
  status: string;
  user_id: string;
}

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    proto: { type: "string", default: "contracts/seed/service.proto" },
  },
});

// The options every grpc-node tutorial uses.
const definition = protoLoader.loadSync(values.proto ?? "", {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const loaded = grpc.loadPackageDefinition(definition);
const pkg = loaded["service"];
if (pkg === undefined || typeof pkg === "function" || !("UserService" in pkg)) throw new Error("no package service");
const UserService = serviceConstructor(pkg["UserService"]);
const OrderService = serviceConstructor(pkg["OrderService"]);

const users = new Map<string, UserResponse>([[BENCH_USER.userId, { name: BENCH_USER.name, email: BENCH_USER.email }]]);
const orders = new Map<string, OrderResponse>();
const latestOrderOfUser = new Map<string, OrderResponse>();

const getUser: grpc.handleUnaryCall<UserRequest, UserResponse> = (call, callback) => {
  const user = users.get(call.request.user_id);
  if (user === undefined) callback({ code: grpc.status.NOT_FOUND, details: "user not found" });
  else callback(null, user);
};

const address = `${values.host}:${values.port}`;
const server = new grpc.Server();
// Created once the port is bound, like the seed's grpc.Dial in NewOrderService.
let userClient: grpc.Client | undefined;
const getUserMethod = UserService.service["GetUser"];
if (getUserMethod === undefined) throw new Error("no GetUser in the seed's UserService");

function callGetUser(userId: string, done: (error: grpc.ServiceError | null) => void): void {
  if (userClient === undefined) return done({ name: "Error", message: "not ready", code: grpc.status.UNAVAILABLE, details: "not ready", metadata: new grpc.Metadata() });
  userClient.makeUnaryRequest(
    getUserMethod.path,
    getUserMethod.requestSerialize,
    getUserMethod.responseDeserialize,
    { user_id: userId },
    (error) => done(error),
  );
}

const createOrder: grpc.handleUnaryCall<OrderRequest, OrderResponse> = (call, callback) => {
  const { order_id, user_id } = call.request;
  if (order_id === "" || user_id === "") return callback({ code: grpc.status.INVALID_ARGUMENT, details: "ids required" });
  callGetUser(user_id, (error) => {
    if (error) return callback(error);
    const order = orders.get(order_id) ?? { status: "created", user_id };
    orders.set(order_id, order);
    latestOrderOfUser.set(user_id, order);
    callback(null, order);
  });
};

const getOrderByUser: grpc.handleUnaryCall<UserRequest, OrderResponse> = (call, callback) => {
  const { user_id } = call.request;
  callGetUser(user_id, (error) => {
    if (error) return callback(error);
    const order = latestOrderOfUser.get(user_id);
    if (order === undefined) callback({ code: grpc.status.NOT_FOUND, details: "no orders" });
    else callback(null, order);
  });
};

server.addService(UserService.service, { GetUser: getUser });
server.addService(OrderService.service, { CreateOrder: createOrder, GetOrderByUser: getOrderByUser });
server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
  userClient = new UserService(address, grpc.credentials.createInsecure());
});

function serviceConstructor(value: unknown): grpc.ServiceClientConstructor {
  if (typeof value !== "function" || !("service" in value)) throw new Error("not a service in the seed's proto");
  return value as grpc.ServiceClientConstructor;
}

const stop = (): void => {
  userClient?.close();
  server.tryShutdown(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
