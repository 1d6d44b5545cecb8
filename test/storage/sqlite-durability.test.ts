import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { openStores } from "../../src/app/open-stores.js";

const FIXTURE = fileURLToPath(new URL("../fixtures/insert-orders-until-killed.ts", import.meta.url));
const USER_ID = "user-durability";
// Far more than the child gets through before it is killed.
const ORDERS_TO_ATTEMPT = 1_000_000;
const KILL_AFTER_ACKNOWLEDGED = 300;

it("every order acknowledged before a SIGKILL is in the SQLite file afterwards", async (t) => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-durability-"));
  t.after(() => fs.rm(dataDir, { recursive: true, force: true }));

  const acknowledged = await runUntilKilled(dataDir);
  assert.ok(acknowledged.length >= KILL_AFTER_ACKNOWLEDGED, `only ${acknowledged.length} orders were acknowledged`);

  const stores = await openStores({ dataDir, services: ["order"] });
  try {
    assert.ok(stores.orders);
    const stored = new Set((await stores.orders.listForUser(USER_ID, ORDERS_TO_ATTEMPT)).map((order) => order.id));
    const lost = acknowledged.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged orders were lost`);
  } finally {
    await stores.close();
  }
});

/** Runs the fixture, SIGKILLs it mid-stream, and returns the ids it printed (only whole lines count). */
function runUntilKilled(dataDir: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, dataDir, USER_ID, String(ORDERS_TO_ATTEMPT)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (stdout.split("\n").length > KILL_AFTER_ACKNOWLEDGED) child.kill("SIGKILL");
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL") {
        reject(new Error(`fixture ended on its own (code ${code}, signal ${signal}): ${stderr}`));
        return;
      }
      // A torn last line was never fully acknowledged: drop it.
      resolve(stdout.split("\n").slice(0, -1));
    });
  });
}
