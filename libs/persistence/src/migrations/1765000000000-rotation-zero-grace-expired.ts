import type { MigrationInterface, QueryRunner } from 'typeorm';
import { rotateWebhookSecretSql } from './1764700000000-rotate-secret-time-after-lock';
import { LAST_CHANGE_SQL } from './1764800000000-webhook-last-change';

const SIGNATURE =
  'rotate_webhook_secret(uuid, text, timestamptz, integer, uuid, text, boolean, text, bytea, text, jsonb, jsonb)';

/**
 * `rotate_webhook_secret(…)` with a twelfth parameter, the envelope of a `webhook.secret.previous_expired` audit
 * event: a rotation with a zero grace period destroys the outgoing (claimed) secret at once, and records that
 * it expired, as housekeeping records every other previous secret it destroys, in the same transaction and
 * right after the `webhook.secret.rotated` event, dated like it. Its `data` (`fingerprint`, `expired_at`) is
 * filled in here, from the secret retired under the lock. Pass NULL when the grace period is not zero.
 *
 * A new overload beside the eleven-parameter function, which stays for API replicas of the previous release
 * still running during a rolling deploy (they call it, and it records no such event); a later release drops it.
 */
export class RotationZeroGraceExpired1765000000000 implements MigrationInterface {
  name = 'RotationZeroGraceExpired1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(rotateWebhookSecretSql(LAST_CHANGE_SQL, true));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION ${SIGNATURE}`);
  }
}
