import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Stores } from "../../src/app/open-stores.js";
import type { User } from "../../src/services/user/domain/user.js";
import type { UserStore } from "../../src/services/user/domain/user-store.js";
import { type StoreLocation, storeBackends } from "../support/store-backends.js";

const BACKENDS = storeBackends("user");

function usersOf(stores: Stores): UserStore {
  assert.ok(stores.users, "openStores did not open a user store");
  return stores.users;
}

function newUser(name = "Ada Lovelace"): User {
  return { id: `user-${randomUUID()}`, name, email: "ada@example.com" };
}

for (const backend of BACKENDS) {
  describe(`UserStore on ${backend.name}`, () => {
    let location: StoreLocation | undefined;
    let stores: Stores | undefined;
    let users: UserStore;

    before(async () => {
      location = await backend.create();
      stores = await location.open();
      users = usersOf(stores);
    });

    after(async () => {
      await stores?.close();
      await location?.remove();
    });

    it("find returns undefined for an id never stored", async () => {
      assert.equal(await users.find(`user-${randomUUID()}`), undefined);
    });

    it("insertIfAbsent stores a new user and returns it", async () => {
      const user = newUser();
      assert.deepEqual(await users.insertIfAbsent(user), user);
      assert.deepEqual(await users.find(user.id), user);
    });

    it("insertIfAbsent keeps and returns the existing user when the id is taken", async () => {
      const first = newUser("First");
      await users.insertIfAbsent(first);
      const second = { ...first, name: "Second", email: "second@example.com" };
      assert.deepEqual(await users.insertIfAbsent(second), first);
      assert.deepEqual(await users.find(first.id), first);
    });

    it("20 concurrent insertIfAbsent calls for one id store one user and all return it", async () => {
      const id = `user-${randomUUID()}`;
      const candidates = Array.from({ length: 20 }, (_, i) => ({ id, name: `Caller ${i}`, email: `c${i}@example.com` }));
      const results = await Promise.all(candidates.map((candidate) => users.insertIfAbsent(candidate)));
      const winner = await users.find(id);
      assert.ok(winner);
      assert.ok(candidates.some((candidate) => candidate.name === winner.name), "the stored user is one of the callers'");
      for (const result of results) assert.deepEqual(result, winner);
    });

    it("users survive closing and reopening the store", async () => {
      const user = newUser();
      await users.insertIfAbsent(user);
      await stores?.close();
      assert.ok(location);
      stores = await location.open();
      users = usersOf(stores);
      assert.deepEqual(await users.find(user.id), user);
    });

    it("opening an already migrated store again, even twice at once, applies no migration twice", async () => {
      const user = newUser();
      await users.insertIfAbsent(user);
      assert.ok(location);
      const again = await Promise.all([location.open(), location.open()]);
      try {
        for (const reopened of again) assert.deepEqual(await usersOf(reopened).find(user.id), user);
      } finally {
        await Promise.all(again.map((reopened) => reopened.close()));
      }
    });
  });
}

describe("UserStore migrations on a fresh database", () => {
  for (const backend of BACKENDS) {
    it(`${backend.name}: two opens racing on an empty database both succeed`, async () => {
      const location = await backend.create();
      try {
        const racing = await Promise.all([location.open(), location.open()]);
        const user = newUser();
        await usersOf(racing[0]).insertIfAbsent(user);
        assert.deepEqual(await usersOf(racing[1]).find(user.id), user);
        await Promise.all(racing.map((stores) => stores.close()));
      } finally {
        await location.remove();
      }
    });
  }
});
