import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { toCallerError } from "../../src/toolkit/server/escaped-error.js";

const GET_USER = "/service.UserService/GetUser";

describe("errors that escape a handler", () => {
  it("pass a handler's own RpcError through unchanged", () => {
    const error = new RpcError(Code.NOT_FOUND, "no such thing", { reason: "THING_NOT_FOUND" });
    assert.equal(toCallerError(error), error);
  });

  it("turn an unknown exception into INTERNAL with a generic message and keep the cause", () => {
    const cause = new Error('relation "users" does not exist: SELECT * FROM users');
    const error = toCallerError(cause);
    assert.equal(error.code, Code.INTERNAL);
    assert.equal(error.message, "internal error");
    assert.equal(error.cause, cause);
  });

  it("name the dependency whose deadline ran out", () => {
    const error = toCallerError(new ClientError(GET_USER, Code.DEADLINE_EXCEEDED, "Deadline exceeded"));
    assert.equal(error.code, Code.DEADLINE_EXCEEDED);
    assert.match(error.message, /service\.UserService/);
    assert.equal(error.reason, "DEPENDENCY_DEADLINE_EXCEEDED");
  });

  it("report an unavailable dependency as UNAVAILABLE, not as the dependency's own status text", () => {
    const error = toCallerError(new ClientError(GET_USER, Code.UNAVAILABLE, "connect ECONNREFUSED 10.0.0.7:50051"));
    assert.equal(error.code, Code.UNAVAILABLE);
    assert.doesNotMatch(error.message, /ECONNREFUSED|10\.0\.0\.7/);
  });

  it("hide any other downstream status behind INTERNAL", () => {
    const error = toCallerError(new ClientError(GET_USER, Code.INVALID_ARGUMENT, "user_id: must not be empty"));
    assert.equal(error.code, Code.INTERNAL);
    assert.equal(error.message, "internal error");
  });
});
