import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { openSqliteOrderStore } from "../../src/services/order/store/sqlite-order-store.js";
import { openSqliteUserStore } from "../../src/services/user/store/sqlite-user-store.js";
import { domainToRpc } from "../../src/services/common/domain-to-rpc.js";
import { RpcError } from "../../src/toolkit/rpc/rpc-error.js";
import { Code } from "../../src/toolkit/rpc/code.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/storage/sqlite-database.js";
import { StorageUnavailableError } from "../../src/storage/storage-unavailable.js";

// Another connection (a second worker process sharing the file) holds the
// write lock past the busy timeout: the store must say "unavailable, retry",
// not fail as an internal error, and lose nothing.
describe("SQLite stores while another connection holds the write lock", () => {
  let dir: string;
  let db: SqliteDatabase;
  let holder: Database.Database;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "switchyard-busy-"));
    db = openSqliteDatabase(path.join(dir, "store.sqlite"), { busyTimeoutMs: 50 });
    holder = new Database(path.join(dir, "store.sqlite"));
  });

  after(async () => {
    holder.close();
    db.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("rejects writes with StorageUnavailableError, which callers hear as UNAVAILABLE STORE_UNAVAILABLE, and writes once the lock is free", async () => {
    const users = openSqliteUserStore(db);
    const orders = openSqliteOrderStore(db);
    const user = { id: "busy-user", name: "Busy", email: "busy@example.com" };
    const order = { id: "busy-order", userId: "busy-user", status: "CREATED", createdAt: 1 };
    holder.exec("BEGIN IMMEDIATE");
    try {
      const userError = await users.insertIfAbsent(user).then(
        () => assert.fail("insert succeeded while the lock was held"),
        (error: unknown) => error,
      );
      assert.ok(userError instanceof StorageUnavailableError, `got ${String(userError)}`);
      assert.match(userError.message, /SQLite is busy/);
      assert.equal((userError.cause as { code?: string }).code, "SQLITE_BUSY");
      await assert.rejects(orders.insertIfAbsent(order), StorageUnavailableError);

      const status = domainToRpc(userError);
      assert.ok(status instanceof RpcError);
      assert.equal(status.code, Code.UNAVAILABLE);
      assert.equal(status.reason, "STORE_UNAVAILABLE");

      // WAL: reads go on while the writer waits.
      assert.equal(await users.find(user.id), undefined);
      assert.deepEqual(await orders.listForUser(user.id, 1), []);
    } finally {
      holder.exec("ROLLBACK");
    }
    assert.deepEqual(await users.insertIfAbsent(user), user);
    assert.deepEqual(await orders.insertIfAbsent(order), order);
    assert.deepEqual(await users.find(user.id), user);
  });
});
