import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { UserRequest, UserResponse } from "../../src/gen/service/v1/service.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { decodeStatusDetails, STATUS_DETAILS_KEY } from "../../src/toolkit/rpc/status-details.js";
import { configName, ENGINES, startSystem, type System, type Topology } from "../support/system.js";

/** The outcome of one raw call: the response bytes, or the error. */
type RawOutcome = { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly error: grpc.ServiceError };

/** Sends `body` as the request message of `path`, byte for byte, with no serializer of ours in the way. */
function rawCall(client: grpc.Client, path: string, body: Buffer): Promise<RawOutcome> {
  return new Promise((resolve) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      path,
      (bytes) => bytes,
      (bytes) => bytes,
      body,
      new grpc.Metadata(),
      { deadline: Date.now() + 5_000 },
      (error, response) => {
        if (error) resolve({ ok: false, error });
        else resolve({ ok: true, bytes: response ?? Buffer.alloc(0) });
      },
    );
  });
}

/** Asserts the call failed with `code` and returns its error. */
function failure(outcome: RawOutcome, code: grpc.status): grpc.ServiceError {
  assert.ok(!outcome.ok, `expected ${grpc.status[code]}, but the call succeeded`);
  assert.equal(
    grpc.status[outcome.error.code],
    grpc.status[code],
    `expected ${grpc.status[code]}, got ${grpc.status[outcome.error.code]}: ${outcome.error.details}`,
  );
  return outcome.error;
}

/** Bytes that no protobuf decoder can read, each for its own reason. */
const GARBAGE: readonly { readonly what: string; readonly bytes: Buffer }[] = [
  // A tag whose varint never ends.
  { what: "bytes 0xff 0xff 0xff", bytes: Buffer.from([0xff, 0xff, 0xff]) },
  // Field 1, length-delimited, claiming ~4 GB with three bytes behind it.
  { what: "a field whose length is far beyond the message", bytes: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x61, 0x62, 0x63]) },
  // Field 1 with wire type 7, which does not exist.
  { what: "a field of an invalid wire type", bytes: Buffer.from([0x0f, 0x01]) },
];

const TOPOLOGIES: readonly Topology[] = ["single", "split"];

for (const [topology, engine] of TOPOLOGIES.flatMap((t) => ENGINES.map((e) => [t, e] as const))) {
  const config = { topology, store: "sqlite", engine } as const;
  describe(`requests that are not valid protobuf, ${configName(config)}`, () => {
    let system: System | undefined;
    let userChannel: grpc.Client | undefined;
    let orderChannel: grpc.Client | undefined;
    const users = (): grpc.Client => {
      assert.ok(userChannel, "the system did not start");
      return userChannel;
    };
    const orders = (): grpc.Client => {
      assert.ok(orderChannel, "the system did not start");
      return orderChannel;
    };

    before(async () => {
      system = await startSystem(config);
      userChannel = new grpc.Client(system.userAddress, grpc.credentials.createInsecure());
      orderChannel = new grpc.Client(system.orderAddress, grpc.credentials.createInsecure());
    });
    after(async () => {
      userChannel?.close();
      orderChannel?.close();
      await system?.close();
    });

    for (const garbage of GARBAGE) {
      it(`GetUser answers INVALID_ARGUMENT (not INTERNAL) for ${garbage.what}`, async () => {
        const error = failure(await rawCall(users(), "/service.UserService/GetUser", garbage.bytes), grpc.status.INVALID_ARGUMENT);
        const trailer = error.metadata.get(STATUS_DETAILS_KEY)[0];
        assert.ok(trailer instanceof Buffer, "no grpc-status-details-bin trailer");
        assert.equal(decodeStatusDetails(trailer, Code.INVALID_ARGUMENT)?.reason, "MALFORMED_REQUEST");
      });

      it(`CreateOrder answers INVALID_ARGUMENT (not INTERNAL) for ${garbage.what}`, async () => {
        const error = failure(
          await rawCall(orders(), "/service.OrderService/CreateOrder", garbage.bytes),
          grpc.status.INVALID_ARGUMENT,
        );
        const trailer = error.metadata.get(STATUS_DETAILS_KEY)[0];
        assert.ok(trailer instanceof Buffer, "no grpc-status-details-bin trailer");
        assert.equal(decodeStatusDetails(trailer, Code.INVALID_ARGUMENT)?.reason, "MALFORMED_REQUEST");
      });
    }

    it("keeps answering valid calls on the same connection after garbage", async () => {
      assert.ok(system);
      const userId = `user-${randomUUID()}`;
      await system.user.createUser({ userId, name: "Ada Lovelace", email: "ada@example.com" });
      for (const garbage of GARBAGE) {
        failure(await rawCall(users(), "/service.UserService/GetUser", garbage.bytes), grpc.status.INVALID_ARGUMENT);
        failure(await rawCall(orders(), "/service.OrderService/CreateOrder", garbage.bytes), grpc.status.INVALID_ARGUMENT);
      }
      const valid = Buffer.from(UserRequest.encode({ userId }).finish());
      const outcome = await rawCall(users(), "/service.UserService/GetUser", valid);
      assert.ok(outcome.ok, outcome.ok ? "" : `a valid GetUser failed: ${outcome.error.details}`);
      assert.deepEqual(UserResponse.decode(outcome.bytes), { userId, name: "Ada Lovelace", email: "ada@example.com" });
      const order = await system.order.createOrder({ orderId: `order-${randomUUID()}`, userId });
      assert.equal(order.status, "created");
    });

    it("answers UNIMPLEMENTED for an unknown method of a known service", async () => {
      failure(await rawCall(users(), "/service.UserService/DeleteUser", Buffer.alloc(0)), grpc.status.UNIMPLEMENTED);
    });

    it("answers UNIMPLEMENTED for an unknown service", async () => {
      failure(await rawCall(orders(), "/service.NoSuchService/Get", Buffer.alloc(0)), grpc.status.UNIMPLEMENTED);
    });

    if (topology === "split") {
      it("answers UNIMPLEMENTED for OrderService on the server hosting only UserService", async () => {
        failure(await rawCall(users(), "/service.OrderService/GetOrderByUser", Buffer.alloc(0)), grpc.status.UNIMPLEMENTED);
      });
    }
  });
}
