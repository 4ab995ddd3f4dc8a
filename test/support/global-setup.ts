// Jest loads global setup outside its module mapper, hence the relative import.
// eslint-disable-next-line no-restricted-imports -- the @app alias does not resolve here (see above)
import { runMigrations } from '../../libs/persistence/src/database-admin';
import { withAdmin } from './admin-database';
import { TEST_DATABASE_URL, applyTestEnv, assertTestDatabase } from './test-env';

/** Creates the test database from scratch and migrates it (each file empties the test Redis database itself). */
export default async function globalSetup(): Promise<void> {
  assertTestDatabase(TEST_DATABASE_URL);
  applyTestEnv();
  const name = new URL(TEST_DATABASE_URL).pathname.slice(1);
  await withAdmin(async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  });
  await runMigrations(TEST_DATABASE_URL);
}
