import { randomBytes } from "node:crypto";
import pg from "pg";

/** The server the PostgreSQL tests use; override with SWITCHYARD_TEST_DATABASE_URL. */
export const TEST_DATABASE_URL = process.env.SWITCHYARD_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema of its own for one test file, so test files can run in parallel against one database. */
export interface TestSchema {
  readonly name: string;
  /** TEST_DATABASE_URL with search_path set to this schema. */
  readonly url: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/** Creates a fresh schema; fails (rather than skipping the tests) when PostgreSQL is not reachable. */
export async function createTestSchema(): Promise<TestSchema> {
  const name = `switchyard_test_${randomBytes(6).toString("hex")}`;
  await withClient(TEST_DATABASE_URL, (client) => client.query(`CREATE SCHEMA ${name}`));
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set("options", `-c search_path=${name}`);
  return {
    name,
    url: url.toString(),
    drop: async () => {
      await withClient(TEST_DATABASE_URL, (client) => client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`));
    },
  };
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `PostgreSQL is not reachable at ${redact(url)} (${reason}). The storage tests need it: ` +
        "start a server with trust auth for user postgres and a database named test, " +
        "or point SWITCHYARD_TEST_DATABASE_URL at one.",
    );
  }
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== "") parsed.password = "***";
  return parsed.toString();
}
