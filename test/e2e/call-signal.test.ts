import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ENGINES, startSystem, type System } from "../support/system.js";

for (const engine of ENGINES) {
  describe(`a handler's signal on the ${engine} engine`, () => {
    let system: System;
    before(async () => {
      system = await startSystem({ topology: "single", store: "sqlite", engine });
    });
    after(() => system.close());

    it("stays unaborted after a call that finished normally", async () => {
      let signal: AbortSignal | undefined;
      const remove = system.addInterceptor("user", async (call, next) => {
        if (call.method === "GetUser") signal = call.context.signal;
        return next();
      });
      await system.user.createUser({ userId: "calm", name: "Calm", email: "calm@example.com" });
      await system.user.getUser({ userId: "calm" });
      // Give a late "cancelled" event from the engine the chance to fire.
      await new Promise((resolve) => setImmediate(resolve));
      remove();
      assert.equal(signal?.aborted, false);
    });
  });
}
