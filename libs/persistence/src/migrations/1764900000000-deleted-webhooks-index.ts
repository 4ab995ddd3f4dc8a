import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `webhooks_deleted_idx`: deleted webhooks by deletion time, for housekeeping, which removes a deleted webhook's
 * row once its delivery log (7 days) is purged; the row was kept only for that log. Partial, so live webhooks,
 * which every hot path reads, add nothing to it.
 *
 * Built in the migration's transaction, not CONCURRENTLY: a concurrent build waits for every older snapshot,
 * that of a second migrator waiting on the migrate lock included, which waits for this one (a deadlock). The
 * build holds off writes to `webhooks` while it scans the table: seconds for millions of rows.
 */
export class DeletedWebhooksIndex1764900000000 implements MigrationInterface {
  name = 'DeletedWebhooksIndex1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX webhooks_deleted_idx ON webhooks (deleted_at) WHERE deleted_at IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX webhooks_deleted_idx`);
  }
}
