import * as grpc from "@grpc/grpc-js";
import { isDeepStrictEqual } from "node:util";
import { CreateUserRequest, OrderRequest, OrderResponse, UserResponse } from "../src/gen/service/v1/service.js";
import { BENCH_ORDER, BENCH_USER, type MethodSpec } from "./fixtures.js";

/** A grpc-js channel to one server under test, for checks and seeding (not for load). */
export interface CheckClient {
  /** Sends the method's benchmark request `times` times; throws unless every answer is status 0 with `expected`. */
  check(spec: MethodSpec, expected: Record<string, string>, times: number): Promise<void>;
  /** Creates the benchmark's user (v1 contract only). */
  createUser(): Promise<void>;
  /** Creates the benchmark's order. */
  createOrder(): Promise<void>;
  close(): void;
}

const DEADLINE_MS = 5_000;

/** Opens a plaintext grpc-js channel to `127.0.0.1:port`. */
export function createCheckClient(port: number): CheckClient {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());

  function call<T>(path: string, request: Uint8Array, decode: (bytes: Uint8Array) => T): Promise<T> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        (bytes: Uint8Array) => Buffer.from(bytes),
        (bytes: Buffer) => decode(bytes),
        request,
        { deadline: Date.now() + DEADLINE_MS },
        (error, response) => {
          if (error) reject(new Error(`${path}: grpc-status ${error.code} (${grpc.status[error.code]}): ${error.details}`));
          else if (response === undefined) reject(new Error(`${path}: no response`));
          else resolve(response);
        },
      );
    });
  }

  return {
    async check(spec, expected, times) {
      for (let i = 0; i < times; i++) {
        const actual = await call(spec.path, spec.request, spec.decode);
        if (!isDeepStrictEqual(actual, expected)) {
          throw new Error(`${spec.path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
        }
      }
    },
    async createUser() {
      await call("/service.UserService/CreateUser", CreateUserRequest.encode({ ...BENCH_USER }).finish(), (b) => UserResponse.decode(b));
    },
    async createOrder() {
      await call("/service.OrderService/CreateOrder", OrderRequest.encode({ ...BENCH_ORDER }).finish(), (b) => OrderResponse.decode(b));
    },
    close: () => client.close(),
  };
}
