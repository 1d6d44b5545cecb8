import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CallContext, deriveCallContext } from "../../src/toolkit/rpc/call-context.js";
import { CancellationSource } from "../../src/toolkit/rpc/cancellation.js";

/** A context whose signal and metadata count how often they are made, as the engines' lazy ones would be. */
class CountingContext extends CancellationSource implements CallContext {
  readonly method = "/service.UserService/GetUser";
  readonly deadline = 1_000;
  readonly peer = "ipv4:127.0.0.1:1";
  readonly made = { signal: 0, metadata: 0 };

  override get signal(): AbortSignal {
    this.made.signal++;
    return super.signal;
  }

  get metadata(): { "x-request-id": string } {
    this.made.metadata++;
    return { "x-request-id": "r1" };
  }
}

function lazyContext(): { context: CountingContext; made: { signal: number; metadata: number } } {
  const context = new CountingContext();
  return { context, made: context.made };
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

  it("tells why the original call was aborted, and its abort listeners, without making a signal", () => {
    const { context, made } = lazyContext();
    const derived = deriveCallContext(context, { traceParent: "00-a-b-01" });
    let heard = 0;
    derived.addAbortListener(() => heard++);
    const removed = (): void => {
      heard += 100;
    };
    derived.addAbortListener(removed);
    derived.removeAbortListener(removed);
    assert.equal(derived.abortReason, undefined);
    const reason = new Error("the caller cancelled the call");
    context.abort(reason);
    context.abort(new Error("a later reason"));
    assert.equal(derived.abortReason, reason);
    assert.equal(heard, 1);
    assert.equal(made.signal, 0);
    assert.equal(derived.signal.reason, reason);
  });

  it("can set a member back to undefined", () => {
    const { context } = lazyContext();
    const withTrace = deriveCallContext(context, { traceParent: "00-a-b-01" });
    assert.equal(deriveCallContext(withTrace, { traceParent: undefined }).traceParent, undefined);
  });
});
