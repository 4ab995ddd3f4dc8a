import type { MigrationInterface, QueryRunner } from 'typeorm';
import { rotateWebhookSecretSql } from './1764700000000-rotate-secret-time-after-lock';
import { LAST_CHANGE_SQL, lastChangeSql } from './1764800000000-webhook-last-change';

/**
 * A second after the caller's time plus the time this call has spent so far, waiting for the webhook's row lock
 * above all (`statement_timestamp()` is when the call began; in the projection of the locking `SELECT`, which
 * Postgres evaluates again on the row version it waited for, `clock_timestamp()` is after the wait).
 */
const HORIZON = "p_now + (clock_timestamp() - statement_timestamp()) + interval '1 second'";

/**
 * `rotate_webhook_secret(…)` (both overloads) follows a last change made while it waited for the webhook's row
 * lock, however long it waited. The caller's time (`p_now`) is read before the wait, and a last change more than
 * a second ahead of it was taken for one dated by a clock far ahead and not followed; so a rotation that waited
 * over a second behind another change was dated before that change: the webhook's `updated_at` went backwards and
 * the audit history listed the two out of the order they took effect. The second now counts from the caller's
 * time plus the wait, as every other change of a webhook, which reads its time once the lock is held, counts it.
 * A clock far ahead is still not followed. Times without a wait are exactly as before.
 */
export class RotationTimeAfterLongWait1765100000000 implements MigrationInterface {
  name = 'RotationTimeAfterLongWait1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(rotateWebhookSecretSql(lastChangeSql(HORIZON), false, HORIZON));
    await q.query(rotateWebhookSecretSql(lastChangeSql(HORIZON), true, HORIZON));
  }

  async down(q: QueryRunner): Promise<void> {
    // Both overloads as WebhookLastChange1764800000000 and RotationZeroGraceExpired1765000000000 left them.
    await q.query(rotateWebhookSecretSql(LAST_CHANGE_SQL));
    await q.query(rotateWebhookSecretSql(LAST_CHANGE_SQL, true));
  }
}
