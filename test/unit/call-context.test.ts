import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CallContext, deriveCallContext } from "../../src/toolkit/rpc/call-context.js";

/** A context whose signal and metadata count how often they are made, as the engines' lazy ones would be. */
function lazyContext(): { context: CallContext; made: { signal: number; metadata: number } } {
  const made = { signal: 0, metadata: 0 };
  const controller = new AbortController();
  const context: CallContext = {
    method: "/service.UserService/GetUser",
    deadline: 1_000,
    peer: "ipv4:127.0.0.1:1",
    get signal() {
      made.signal++;
      return controller.signal;
    },
    get metadata() {
      made.metadata++;
      return { "x-request-id": "r1" };
    },
  };
  return { context, made };
}

describe("deriveCallContext", () => {
  it("applies the changes and keeps every other member", () => {
    const { context } = lazyContext();
    const derived = deriveCallContext(context, { principal: { subject: "alice", scopes: [], roles: [] }, deadline: 500 });
    assert.equal(derived.principal?.subject, "alice");
    assert.equal(derived.deadline, 500);
    assert.equal(derived.method, context.method);
    assert.equal(derived.peer, context.peer);
    assert.deepEqual(derived.metadata, { "x-request-id": "r1" });
  });

  it("makes neither the signal nor the metadata until someone reads them, through any number of derivations", () => {
    const { context, made } = lazyContext();
    const twice = deriveCallContext(deriveCallContext(context, { traceParent: "00-a-b-01" }), { peerIdentity: "spiffe://x" });
    assert.deepEqual(made, { signal: 0, metadata: 0 });
    assert.equal(twice.signal.aborted, false);
    assert.equal(twice.traceParent, "00-a-b-01");
    assert.deepEqual(made, { signal: 1, metadata: 0 });
  });

  it("tells why the original call was aborted, without making a signal", () => {
    const { context, made } = lazyContext();
    let reason: unknown;
    const original: CallContext = Object.defineProperty(context, "abortReason", { get: () => reason });
    const derived = deriveCallContext(original, { traceParent: "00-a-b-01" });
    assert.equal(derived.abortReason, undefined);
    reason = new Error("the caller cancelled the call");
    assert.equal(derived.abortReason, reason);
    assert.equal(made.signal, 0);
  });

  it("can set a member back to undefined", () => {
    const { context } = lazyContext();
    const withTrace = deriveCallContext(context, { traceParent: "00-a-b-01" });
    assert.equal(deriveCallContext(withTrace, { traceParent: undefined }).traceParent, undefined);
  });
});
