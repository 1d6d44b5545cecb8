import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openStores, type StoredService, type Stores } from "../../src/app/open-stores.js";
import { createTestSchema } from "./postgres.js";

/** A place to keep one service's data that can be opened repeatedly, and removed at the end. */
export interface StoreLocation {
  open(): Promise<Stores>;
  remove(): Promise<void>;
}

/** Both databases a store runs on: every store contract test runs against each. */
export function storeBackends(service: StoredService): readonly { name: string; create(): Promise<StoreLocation> }[] {
  return [
    {
      name: "SQLite",
      async create() {
        const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `switchyard-${service}-store-`));
        return {
          open: () => openStores({ dataDir, services: [service] }),
          remove: () => fs.rm(dataDir, { recursive: true, force: true }),
        };
      },
    },
    {
      name: "PostgreSQL",
      async create() {
        const schema = await createTestSchema();
        return {
          open: () => openStores({ dataDir: "unused", databaseUrl: schema.url, services: [service] }),
          remove: () => schema.drop(),
        };
      },
    },
  ];
}
