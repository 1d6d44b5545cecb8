import pg from "pg";

/** A schema of the benchmark's own in the PostgreSQL database, emptied at start. */
export interface BenchSchema {
  /** The database URL with search_path set to the schema. */
  readonly url: string;
  drop(): Promise<void>;
}

/**
 * Drops and recreates `name` (so every run starts from empty tables) and
 * returns a URL whose connections use it. Throws when PostgreSQL is unreachable.
 */
export async function resetSchema(databaseUrl: string, name: string): Promise<BenchSchema> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad schema name ${name}`);
  await sql(databaseUrl, `DROP SCHEMA IF EXISTS ${name} CASCADE; CREATE SCHEMA ${name}`);
  const url = new URL(databaseUrl);
  url.searchParams.set("options", `-c search_path=${name}`);
  return { url: url.toString(), drop: () => sql(databaseUrl, `DROP SCHEMA IF EXISTS ${name} CASCADE`) };
}

async function sql(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}
