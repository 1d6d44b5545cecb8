import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { BadRequest, ErrorInfo } from "../../src/gen/google/rpc/error_details.js";
import { Status } from "../../src/gen/google/rpc/status.js";
import { CreateUserRequest, OrderRequest, UserRequest } from "../../src/gen/service/v1/service.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { configName, ENGINES, expectCallError, startSystem, type System, type Topology } from "../support/system.js";

const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";
const SECRET_SQL = "SELECT secret FROM x";

/** Calls `path` with an encoded request on a plain grpc-js client and returns the error it must fail with. */
function failingCall(client: grpc.Client, path: string, body: Uint8Array): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      path,
      (bytes) => bytes,
      (bytes) => bytes,
      Buffer.from(body),
      new grpc.Metadata(),
      { deadline: Date.now() + 5_000 },
      (error) => {
        if (error) resolve(error);
        else reject(new Error(`${path} succeeded; expected it to fail`));
      },
    );
  });
}

/** What the grpc-status-details-bin trailer of `error` says, decoded as google.rpc.Status. */
interface RichStatus {
  readonly status: Status;
  readonly errorInfo: ErrorInfo | undefined;
  readonly badRequest: BadRequest | undefined;
}

function richStatus(error: grpc.ServiceError): RichStatus {
  const values = error.metadata.get("grpc-status-details-bin");
  assert.equal(values.length, 1, "expected exactly one grpc-status-details-bin trailer");
  const [bytes] = values;
  assert.ok(bytes instanceof Buffer, "grpc-status-details-bin is not binary");
  const status = Status.decode(bytes);
  assert.equal(status.code, error.code, "the Status code differs from the grpc-status");
  assert.equal(status.message, error.details, "the Status message differs from the grpc-message");
  const known = new Set([ERROR_INFO_TYPE, BAD_REQUEST_TYPE]);
  for (const detail of status.details) assert.ok(known.has(detail.typeUrl), `unexpected detail ${detail.typeUrl}`);
  const errorInfos = status.details.filter((d) => d.typeUrl === ERROR_INFO_TYPE);
  const badRequests = status.details.filter((d) => d.typeUrl === BAD_REQUEST_TYPE);
  assert.ok(errorInfos.length <= 1 && badRequests.length <= 1, "a detail type appears twice");
  return {
    status,
    errorInfo: errorInfos[0] && ErrorInfo.decode(errorInfos[0].value),
    badRequest: badRequests[0] && BadRequest.decode(badRequests[0].value),
  };
}

/** Every piece of text the caller receives with an error: message and all trailer values. */
function everythingSent(error: grpc.ServiceError): string {
  const parts = [error.details];
  for (const [key, values] of Object.entries(error.metadata.getMap())) {
    parts.push(key, typeof values === "string" ? values : values.toString("latin1"));
  }
  return parts.join("\n");
}

function assertNoLeak(text: string): void {
  assert.ok(!text.includes("SELECT"), `SQL reached the client: ${text}`);
  assert.ok(!text.includes("secret"), `the failure's text reached the client: ${text}`);
  assert.ok(!/\bat .+:\d+:\d+/.test(text), `a stack trace reached the client: ${text}`);
}

const TOPOLOGIES: readonly Topology[] = ["single", "split"];

for (const [topology, engine] of TOPOLOGIES.flatMap((t) => ENGINES.map((e) => [t, e] as const))) {
  const config = { topology, store: "sqlite", engine } as const;
  describe(`error details on the wire, ${configName(config)}`, () => {
    let system: System | undefined;
    let userChannel: grpc.Client | undefined;
    let orderChannel: grpc.Client | undefined;
    const sys = (): System => {
      assert.ok(system, "the system did not start");
      return system;
    };
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

    it("an invalid GetUser carries google.rpc.Status with ErrorInfo (domain switchyard.dev) and BadRequest on user_id", async () => {
      const error = await failingCall(users(), "/service.UserService/GetUser", UserRequest.encode({ userId: "" }).finish());
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      const { errorInfo, badRequest } = richStatus(error);
      assert.ok(errorInfo, "no ErrorInfo");
      assert.equal(errorInfo.reason, "INVALID_ARGUMENT");
      assert.equal(errorInfo.domain, "switchyard.dev");
      assert.ok(badRequest, "no BadRequest");
      assert.deepEqual(
        badRequest.fieldViolations.map((v) => v.field),
        ["user_id"],
      );
      assert.notEqual(badRequest.fieldViolations[0]?.description, "");
    });

    it("an invalid CreateUser's BadRequest lists one violation per bad field", async () => {
      const body = CreateUserRequest.encode({ userId: "", name: " ", email: "nope" }).finish();
      const error = await failingCall(users(), "/service.UserService/CreateUser", body);
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      const { badRequest } = richStatus(error);
      assert.ok(badRequest, "no BadRequest");
      assert.deepEqual(badRequest.fieldViolations.map((v) => v.field).sort(), ["email", "name", "user_id"]);
    });

    it("an unknown user's NOT_FOUND carries ErrorInfo USER_NOT_FOUND with the user_id, and no BadRequest", async () => {
      const userId = `nobody-${randomUUID()}`;
      const error = await failingCall(users(), "/service.UserService/GetUser", UserRequest.encode({ userId }).finish());
      assert.equal(error.code, grpc.status.NOT_FOUND);
      const { errorInfo, badRequest } = richStatus(error);
      assert.deepEqual(errorInfo, { reason: "USER_NOT_FOUND", domain: "switchyard.dev", metadata: { user_id: userId } });
      assert.equal(badRequest, undefined);
    });

    it("CreateOrder for an unknown user carries FAILED_PRECONDITION with ErrorInfo USER_NOT_FOUND", async () => {
      const userId = `nobody-${randomUUID()}`;
      const body = OrderRequest.encode({ orderId: `order-${randomUUID()}`, userId }).finish();
      const error = await failingCall(orders(), "/service.OrderService/CreateOrder", body);
      assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
      const { errorInfo } = richStatus(error);
      assert.equal(errorInfo?.reason, "USER_NOT_FOUND");
      assert.equal(errorInfo?.domain, "switchyard.dev");
    });

    it("a handler's unexpected failure reaches the client as INTERNAL \"internal error\", without SQL or stack", async () => {
      const remove = sys().addInterceptor("order", async (call, next) => {
        if (call.method === "GetOrderByUser") throw new Error(SECRET_SQL);
        return next();
      });
      try {
        const body = UserRequest.encode({ userId: `user-${randomUUID()}` }).finish();
        const error = await failingCall(orders(), "/service.OrderService/GetOrderByUser", body);
        assert.equal(grpc.status[error.code], "INTERNAL");
        assert.equal(error.details, "internal error");
        assertNoLeak(everythingSent(error));
        const { status } = richStatus(error);
        assert.equal(status.message, "internal error");
        assertNoLeak(JSON.stringify(Status.toJSON(status)));

        // The generated client sees the same.
        const viaClient = await expectCallError(sys().order.getOrderByUser({ userId: "someone" }), { code: Code.INTERNAL });
        assert.equal(viaClient.message, "internal error");
        assert.equal(viaClient.reason, undefined);
      } finally {
        remove();
      }
    });

    it("UserService's unexpected failure during CreateOrder reaches the client as INTERNAL without SQL", async () => {
      const remove = sys().addInterceptor("user", async (call, next) => {
        if (call.method === "GetUser") throw new Error(SECRET_SQL);
        return next();
      });
      try {
        const body = OrderRequest.encode({ orderId: `order-${randomUUID()}`, userId: `user-${randomUUID()}` }).finish();
        const error = await failingCall(orders(), "/service.OrderService/CreateOrder", body);
        assert.equal(grpc.status[error.code], "INTERNAL");
        assert.equal(error.details, "internal error");
        assertNoLeak(everythingSent(error));
      } finally {
        remove();
      }
    });
  });
}
