import type { MigrationInterface, QueryRunner } from 'typeorm';
import { rotateWebhookSecretSql } from './1764700000000-rotate-secret-time-after-lock';
import { lastChangeSql } from './1764800000000-webhook-last-change';

/** As RotationTimeAfterLongWait1765100000000 has it. */
const HORIZON = "p_now + (clock_timestamp() - statement_timestamp()) + interval '1 second'";
/** Previous secrets a webhook keeps in their grace period, at most (MAX_PREVIOUS_SECRETS, frozen here). */
const BOUND = 10;

/**
 * A webhook keeps at most ten previous secrets in their grace period. Before, every manual rotation with a grace
 * period kept one more, without end (the rate limit allows thousands a minute): each delivery of the webhook was
 * then signed with every one of them, an `Anchor-Signature` of a hundred kilobytes that receivers refuse (431,
 * a final failure), and cost the shared worker a decryption and an HMAC per secret. Now a rotation whose kept
 * secret makes an eleventh destroys the oldest at once, recorded as `webhook.secret.previous_expired` at the
 * rotation, in its own transaction, with the event envelope a zero grace period uses (the API now always sends
 * it). The twelve-parameter `rotate_webhook_secret(…)` is replaced; the eleven-parameter one, for replicas of an
 * earlier release during a rolling deploy, is left as it is, and so is a call without the envelope.
 */
export class PreviousSecretsBound1765200000000 implements MigrationInterface {
  name = 'PreviousSecretsBound1765200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(rotateWebhookSecretSql(lastChangeSql(HORIZON), true, HORIZON, BOUND));
  }

  async down(q: QueryRunner): Promise<void> {
    // As RotationTimeAfterLongWait1765100000000 left it.
    await q.query(rotateWebhookSecretSql(lastChangeSql(HORIZON), true, HORIZON));
  }
}
