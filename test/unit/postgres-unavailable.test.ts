import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isUnavailable } from "../../src/storage/postgres-pool.js";

function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe("which PostgreSQL failures count as the database being unavailable", () => {
  it("counts a refused or cut connection, a full pool, a restarting server and a statement timeout", () => {
    for (const error of [
      withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED"),
      withCode("read ECONNRESET", "ECONNRESET"),
      new Error("timeout exceeded when trying to connect"),
      new Error("Connection terminated unexpectedly"),
      withCode("terminating connection due to administrator command", "57P01"),
      withCode("the database system is starting up", "57P03"),
      withCode("sorry, too many clients already", "53300"),
      withCode("canceling statement due to statement timeout", "57014"),
      withCode("connection failure", "08006"),
    ]) {
      assert.equal(isUnavailable(error), true, error.message);
    }
  });

  it("leaves failures of the query itself alone: they are bugs or conflicts, not outages", () => {
    for (const error of [
      withCode('syntax error at or near "SELEC"', "42601"),
      withCode('duplicate key value violates unique constraint "orders_pkey"', "23505"),
      withCode('relation "users" does not exist', "42P01"),
      new Error("user vanished right after insert"),
      // A failure with a SQLSTATE of its own is read by its code, whatever its message says.
      withCode("raised by a function: connection error upstream", "P0001"),
      "not an error",
    ]) {
      assert.equal(isUnavailable(error), false, String(error));
    }
  });
});
