import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes for the filters of `GET /v1/webhooks/{id}/events`: `status` and `event_type`. The delivery log's
 * indexes lead with the webhook but hold neither column, so the `total` of such a filter read every delivery of
 * the webhook, and a page of a rare status or type walked the webhook's whole log; Postgres often scanned the
 * whole table instead (0.5 to 1 s for a webhook with 1.3M deliveries among 2.8M, growing with every project's
 * deliveries). Now the count is a range of one of these indexes and the page reads it in the route's order
 * (created_at, id, both descending): 5 to 30 ms.
 *
 * The price is two index entries per delivery written. A delivery changes status once, when it ends, by an
 * update that already moves `scheduled_at` (indexed, so never HOT), and its type never: no update that could stay
 * HOT (the attempt claim changes `attempt` only) gains an index write.
 *
 * Built in the migration's transaction, not CONCURRENTLY, as DeletedWebhooksIndex1764900000000 explains: the
 * builds hold off writes to `deliveries` (fan-out, attempts' outcomes) until the migration commits, about 12 s for
 * 2.8M rows on a 2-core machine. On a very large installation, build them beforehand with CREATE INDEX
 * CONCURRENTLY under these names; IF NOT EXISTS then leaves them as they are.
 */
export class DeliveryLogFilterIndexes1765500000000 implements MigrationInterface {
  name = 'DeliveryLogFilterIndexes1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX IF NOT EXISTS deliveries_webhook_status_created_idx
         ON deliveries (webhook_id, status, created_at DESC, id DESC)`,
    );
    await q.query(
      `CREATE INDEX IF NOT EXISTS deliveries_webhook_type_created_idx
         ON deliveries (webhook_id, event_type, created_at DESC, id DESC)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX deliveries_webhook_type_created_idx`);
    await q.query(`DROP INDEX deliveries_webhook_status_created_idx`);
  }
}
