import { Client } from 'pg';
import { TEST_DATABASE_URL } from './test-env';

/** Runs `work` on a connection to the test server's `postgres` database (to create and drop databases). */
export async function withAdmin<T>(work: (admin: Client) => Promise<T>): Promise<T> {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * The name of a second database for this run, named after the test database (`webhooks_test` gives
 * `webhooks_<purpose>_test`, `webhooks_ci2_test` gives `webhooks_ci2_<purpose>_test`). Files that drop and create
 * a database of their own must not share it with a run on another test database on the same server: that run's
 * `DROP DATABASE ... WITH (FORCE)` would cut this one's connections.
 */
export function siblingDatabaseName(purpose: string): string {
  const name = new URL(TEST_DATABASE_URL).pathname.slice(1);
  return `${name.replace(/_test$/, '')}_${purpose}_test`;
}
