import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createCleanupStack } from "../../src/app/cleanup-stack.js";

describe("cleanup stack", () => {
  it("closes stage by stage in the drain order, whatever order resources were opened in", async () => {
    const stack = createCleanupStack();
    const closed: string[] = [];
    const closer = (name: string) => () => void closed.push(name);
    stack.push("tls", closer("certificates"));
    stack.push("state", closer("stores"));
    stack.push("channels", closer("user channel"));
    stack.push("server", closer("server"));
    stack.push("state", closer("telemetry"));
    stack.push("registry", closer("registration"));
    stack.push("health", closer("not serving"));
    await stack.unwind();
    assert.deepEqual(closed, ["not serving", "registration", "server", "user channel", "certificates", "stores", "telemetry"]);
  });

  it("waits for a stage to finish before the next one starts", async () => {
    const stack = createCleanupStack();
    const events: string[] = [];
    stack.push("server", async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      events.push("drained");
    });
    stack.push("state", () => void events.push("stores closed"));
    await stack.unwind();
    assert.deepEqual(events, ["drained", "stores closed"]);
  });

  it("still runs every later stage when a closer fails, then throws that failure", async () => {
    const stack = createCleanupStack();
    const closed: string[] = [];
    stack.push("registry", () => Promise.reject(new Error("etcd unreachable")));
    stack.push("server", () => void closed.push("server"));
    stack.push("state", () => void closed.push("stores"));
    await assert.rejects(stack.unwind(), /etcd unreachable/);
    assert.deepEqual(closed, ["server", "stores"]);
  });
});
