import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UserServiceDefinition } from "../../src/gen/service/v1/service.js";
import { createClient } from "../../src/toolkit/client/create-client.js";
import type { Transport, TransportCallOptions } from "../../src/toolkit/client/transport.js";
import { type CallContext, createCallContext } from "../../src/toolkit/rpc/call-context.js";
import { ClientError } from "../../src/toolkit/rpc/client-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";

/** A transport that records what the client asked for and answers at once. */
function recordingTransport(): Transport & { calls: TransportCallOptions[] } {
  const calls: TransportCallOptions[] = [];
  return {
    calls,
    unary: async (_service, method, _request, options) => {
      calls.push(options);
      return method.responseType.decode(new Uint8Array());
    },
    close() {},
  };
}

function inboundContext(deadline: number | undefined, signal = new AbortController().signal): CallContext {
  return createCallContext({ method: "/test/Inbound", ...(deadline === undefined ? {} : { deadline }), signal, peer: "test" });
}

describe("client deadlines", () => {
  it("gives a call made outside any handler the default timeout", async () => {
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport, { defaultTimeoutMs: 1_000 });
    const before = Date.now();
    await client.getUser({ userId: "u1" });
    const deadline = transport.calls[0]?.deadline ?? 0;
    assert.ok(deadline >= before + 1_000 && deadline <= Date.now() + 1_000);
  });

  it("inherits the parent call's deadline minus the margin", async () => {
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport, { defaultTimeoutMs: 60_000, deadlineMarginMs: 25 });
    const inbound = Date.now() + 500;
    await client.getUser({ userId: "u1" }, { parent: inboundContext(inbound) });
    assert.equal(transport.calls[0]?.deadline, inbound - 25);
  });

  it("keeps its own timeout when that is sooner than the inbound deadline", async () => {
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport);
    const before = Date.now();
    await client.getUser({ userId: "u1" }, { parent: inboundContext(Date.now() + 60_000), timeoutMs: 100 });
    assert.ok((transport.calls[0]?.deadline ?? Infinity) <= Date.now() + 100);
    assert.ok((transport.calls[0]?.deadline ?? 0) >= before + 100);
  });

  it("fails with DEADLINE_EXCEEDED without calling when no time is left", async () => {
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport);
    const error = await client.getUser({ userId: "u1" }, { parent: inboundContext(Date.now() + 5) }).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof ClientError);
    assert.equal(error.code, Code.DEADLINE_EXCEEDED);
    assert.equal(transport.calls.length, 0);
  });

  it("passes the parent call's cancellation to the outbound call", async () => {
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport);
    const inbound = new AbortController();
    await client.getUser({ userId: "u1" }, { parent: inboundContext(undefined, inbound.signal) });
    const cancellation = transport.calls[0]?.cancellation;
    assert.equal(cancellation?.abortReason, undefined);
    inbound.abort();
    assert.notEqual(cancellation?.abortReason, undefined);
  });

  it("cancels on either the caller's own signal or the parent's", async () => {
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport);
    const own = new AbortController();
    await client.getUser({ userId: "u1" }, { parent: inboundContext(undefined), signal: own.signal });
    own.abort();
    assert.notEqual(transport.calls[0]?.cancellation?.abortReason, undefined);
  });
});

describe("client deadlines under a generous inbound deadline", () => {
  it("follow the inbound deadline even when it is later than the default timeout", async () => {
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport, { defaultTimeoutMs: 1_000, deadlineMarginMs: 20 });
    const inbound = Date.now() + 60_000;
    await client.getUser({ userId: "u1" }, { parent: inboundContext(inbound) });
    assert.equal(transport.calls[0]?.deadline, inbound - 20);
  });

  it("give a call whose parent has no deadline the default timeout", async () => {
    const transport = recordingTransport();
    const client = createClient(UserServiceDefinition, transport, { defaultTimeoutMs: 1_000 });
    const before = Date.now();
    await client.getUser({ userId: "u1" }, { parent: inboundContext(undefined) });
    const deadline = transport.calls[0]?.deadline ?? 0;
    assert.ok(deadline >= before + 1_000 && deadline <= Date.now() + 1_000);
  });
});
