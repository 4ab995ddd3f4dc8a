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
