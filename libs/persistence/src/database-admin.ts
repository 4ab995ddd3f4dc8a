import { Client } from 'pg';
import { createDataSource } from './data-source';

/** Creates the database named in `url` when it does not exist yet (connecting to the `postgres` database). */
export async function ensureDatabase(url: string): Promise<boolean> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (name === '') throw new Error('DATABASE_URL names no database');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      // Quoted as an identifier: any name Postgres takes (a dot, capitals, a quote) is created as it is spelled.
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
    } catch (e) {
      // Another process created it between our check and our CREATE: duplicate_database once it committed,
      // unique_violation on the catalog while both CREATEs are still in flight.
      const code = (e as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw e;
      return false;
    }
    return true;
  } finally {
    await client.end();
  }
}

/** Applies pending migrations; returns their names. Safe to run from several processes at once. */
export async function runMigrations(url: string): Promise<string[]> {
  const ds = createDataSource(url, 2);
  await ds.initialize();
  try {
    // One migrator at a time across processes (compose's one-shot job, `npm start`, tests).
    await ds.query('SELECT pg_advisory_lock(7301001)');
    try {
      const done = await ds.runMigrations({ transaction: 'each' });
      return done.map((m) => m.name);
    } finally {
      await ds.query('SELECT pg_advisory_unlock(7301001)');
    }
  } finally {
    await ds.destroy();
  }
}

/**
 * True when every migration known to the code has been applied. Only reads: TypeORM's `showMigrations` creates the
 * migrations table when it is missing, so a readiness probe on a database not migrated yet would run DDL, racing
 * the `migrate` job that creates the same table.
 */
export async function migrationsApplied(ds: import('typeorm').DataSource): Promise<boolean> {
  const table = ds.options.migrationsTableName ?? 'migrations';
  const found: { t: string | null }[] = await ds.query('SELECT to_regclass($1)::text AS t', [
    ds.driver.escape(table),
  ]);
  if (!found[0]?.t) return ds.migrations.length === 0;
  const rows: { name: string }[] = await ds.query(`SELECT name FROM ${ds.driver.escape(table)}`);
  const applied = new Set(rows.map((r) => r.name));
  return ds.migrations.every((m) => applied.has(m.name || m.constructor.name));
}
