import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `webhooks_deleted_idx`: deleted webhooks by deletion time, for housekeeping, which removes a deleted webhook's
 * row once its delivery log (7 days) is purged; the row was kept only for that log. Partial, so live webhooks,
 * which every hot path reads, add nothing to it.
 *
 * Built CONCURRENTLY, outside a transaction, so that writes to `webhooks` go on during the build on a large
 * table; an index left invalid by an interrupted build is dropped and built again.
 */
export class DeletedWebhooksIndex1764900000000 implements MigrationInterface {
  name = 'DeletedWebhooksIndex1764900000000';
  transaction = false as const;

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX CONCURRENTLY IF EXISTS webhooks_deleted_idx`);
    await q.query(
      `CREATE INDEX CONCURRENTLY webhooks_deleted_idx ON webhooks (deleted_at) WHERE deleted_at IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX CONCURRENTLY IF EXISTS webhooks_deleted_idx`);
  }
}
