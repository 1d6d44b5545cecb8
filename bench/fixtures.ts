import { OrderResponse, UserRequest, UserResponse, OrderRequest } from "../src/gen/service/v1/service.js";

/** The one user every benchmark reads, created before any load. */
export const BENCH_USER = { userId: "bench-user-1", name: "Ada Lovelace", email: "ada@example.com" } as const;

/** The order created before load; CreateOrder under h2load replays exactly this request. */
export const BENCH_ORDER = { orderId: "bench-order-1", userId: BENCH_USER.userId } as const;

/** A method the benchmark drives. */
export type BenchMethod = "GetUser" | "CreateOrder" | "GetOrderByUser";

/** The methods, in the order they are measured and reported. */
export const BENCH_METHODS: readonly BenchMethod[] = ["GetUser", "CreateOrder", "GetOrderByUser"];

/** How a method is reached and what its request looks like. */
export interface MethodSpec {
  readonly method: BenchMethod;
  /** The HTTP/2 :path, e.g. `/service.UserService/GetUser`. */
  readonly path: string;
  /** Which service hosts it, so the split topology sends it to the right process. */
  readonly service: "user" | "order";
  /** The protobuf request body (without the gRPC length prefix). */
  readonly request: Uint8Array;
  /** Decodes a response body into plain fields, for comparison with an expectation. */
  decode(bytes: Uint8Array): Record<string, string>;
}

/** The three benchmarked methods with their fixed requests. */
export const METHOD_SPECS: Readonly<Record<BenchMethod, MethodSpec>> = {
  GetUser: {
    method: "GetUser",
    path: "/service.UserService/GetUser",
    service: "user",
    request: UserRequest.encode({ userId: BENCH_USER.userId }).finish(),
    decode: (bytes) => ({ ...UserResponse.decode(bytes) }),
  },
  CreateOrder: {
    method: "CreateOrder",
    path: "/service.OrderService/CreateOrder",
    service: "order",
    request: OrderRequest.encode({ ...BENCH_ORDER }).finish(),
    decode: (bytes) => ({ ...OrderResponse.decode(bytes) }),
  },
  GetOrderByUser: {
    method: "GetOrderByUser",
    path: "/service.OrderService/GetOrderByUser",
    service: "order",
    request: UserRequest.encode({ userId: BENCH_USER.userId }).finish(),
    decode: (bytes) => ({ ...OrderResponse.decode(bytes) }),
  },
};

/** What Switchyard (v1 contract) answers for each method once the fixtures exist. */
export const V1_RESPONSES: Readonly<Record<BenchMethod, Record<string, string>>> = {
  GetUser: { name: BENCH_USER.name, email: BENCH_USER.email, userId: BENCH_USER.userId },
  CreateOrder: { status: "created", userId: BENCH_ORDER.userId, orderId: BENCH_ORDER.orderId },
  GetOrderByUser: { status: "created", userId: BENCH_ORDER.userId, orderId: BENCH_ORDER.orderId },
};

/** What a server speaking only the seed's contract answers: no user_id / order_id fields. */
export const SEED_RESPONSES: Readonly<Record<BenchMethod, Record<string, string>>> = {
  GetUser: { name: BENCH_USER.name, email: BENCH_USER.email, userId: "" },
  CreateOrder: { status: "created", userId: BENCH_ORDER.userId, orderId: "" },
  GetOrderByUser: { status: "created", userId: BENCH_ORDER.userId, orderId: "" },
};

/** The encoded v1 response bodies, which the bare node:http2 ceiling sends verbatim. */
export function encodedV1Response(method: BenchMethod): Uint8Array {
  const fields = V1_RESPONSES[method];
  return method === "GetUser"
    ? UserResponse.encode({ name: fields.name ?? "", email: fields.email ?? "", userId: fields.userId ?? "" }).finish()
    : OrderResponse.encode({ status: fields.status ?? "", userId: fields.userId ?? "", orderId: fields.orderId ?? "" }).finish();
}
