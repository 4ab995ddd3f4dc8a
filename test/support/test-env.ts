// The environment every end-to-end test runs under. Tests get their own database (its name must end in
// `_test`, checked before anything is dropped) and their own Redis logical database.
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/webhooks_test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';

/** Refuses to run against a database whose name does not end in `_test`. */
export function assertTestDatabase(url: string): void {
  const name = new URL(url).pathname.slice(1);
  if (!name.endsWith('_test')) {
    throw new Error(
      `refusing to run end-to-end tests against database "${name}": its name must end in _test`,
    );
  }
}

/** Points the configuration at the test database and Redis. */
export function applyTestEnv(): void {
  process.env.NODE_ENV = 'test';
  process.env.DATABASE_URL = TEST_DATABASE_URL;
  process.env.REDIS_URL = TEST_REDIS_URL;
  process.env.LOG_LEVEL = process.env.LOG_LEVEL ?? 'silent';
  process.env.MAX_WEBHOOKS_PER_PROJECT = '5';
}
