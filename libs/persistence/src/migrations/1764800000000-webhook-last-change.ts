import type { MigrationInterface, QueryRunner } from 'typeorm';
import { rotateWebhookSecretSql } from './1764700000000-rotate-secret-time-after-lock';

/**
 * `webhooks.last_change_at`: the time of the webhook's last change that does not move its `updated_at` (its
 * rotation policy set or removed, a secret claimed, previous secrets revoked), written under the webhook's row
 * lock with the audit event of that change. Never shown; NULL until the first such change.
 *
 * Every change of a webhook is dated after the later of `updated_at` and `last_change_at` (+ 1 ms when the
 * clock has not passed it, followed up to a second ahead), so the audit history of one webhook lists its changes
 * in the order they took effect. Before this column, a change waiting for the lock behind a claim, a policy
 * change or a revocation followed `updated_at` only and could be dated before it. `rotate_webhook_secret(…)`
 * is recreated to follow both; the API and the rotation sweep do the same (`timeOfChange`).
 */
// Each of the two only when less than a second ahead, so that one far ahead does not hide the other; GREATEST
// ignores NULL (last_change_at before the first change that writes it, or one too far ahead).
const within = (column: string, horizon: string) => `CASE WHEN ${column} < ${horizon} THEN ${column} END`;
/**
 * The webhook's last change as `rotate_webhook_secret(…)` reads it from the locked row: each of the two columns
 * only when before `horizon` (SQL; here a second after the caller's time).
 */
export const lastChangeSql = (horizon = "p_now + interval '1 second'"): string =>
  `GREATEST(${within('updated_at', horizon)}, ${within('last_change_at', horizon)})`;
/** {@link lastChangeSql} as this migration has it. */
export const LAST_CHANGE_SQL = lastChangeSql();

export class WebhookLastChange1764800000000 implements MigrationInterface {
  name = 'WebhookLastChange1764800000000';

  async up(q: QueryRunner): Promise<void> {
    // No default and no rewrite: adding a nullable column is a catalog change only, whatever the table's size.
    await q.query(`ALTER TABLE webhooks ADD COLUMN last_change_at timestamptz`);
    await q.query(rotateWebhookSecretSql(LAST_CHANGE_SQL));
  }

  async down(q: QueryRunner): Promise<void> {
    // The function's row type is the table's: recreate it over the table as it was, then drop the column.
    await q.query(rotateWebhookSecretSql('updated_at'));
    await q.query(`ALTER TABLE webhooks DROP COLUMN last_change_at`);
  }
}
