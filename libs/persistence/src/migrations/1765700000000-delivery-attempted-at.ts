import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `deliveries.attempted_at`: when the latest attempt was claimed, that is when it went out. A worker that stops
 * between an attempt's claim and the write of its outcome (killed, or Postgres away for longer than it waits)
 * leaves the row pending with `scheduled_at` still the due time of that attempt; the stranded-delivery rescue then
 * queues the next attempt, and without this time it could only queue it at once, hours before the retry schedule
 * allows. Now it waits until the attempt's start plus the schedule's delay.
 *
 * No rewrite and no index: the column is added without a default (a catalog change, whatever the table's size),
 * and the claim, which sets it, stays an in-place (HOT) update. Rows from before stay NULL, and the rescue treats
 * them as it did.
 */
export class DeliveryAttemptedAt1765700000000 implements MigrationInterface {
  name = 'DeliveryAttemptedAt1765700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE deliveries ADD COLUMN attempted_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE deliveries DROP COLUMN attempted_at`);
  }
}
