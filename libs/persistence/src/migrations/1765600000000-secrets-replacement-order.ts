import type { MigrationInterface, QueryRunner } from 'typeorm';
import { rotateWebhookSecretSql } from './1764700000000-rotate-secret-time-after-lock';
import { lastChangeSql } from './1764800000000-webhook-last-change';

/** As RotationTimeAfterLongWait1765100000000 has it. */
const HORIZON = "p_now + (clock_timestamp() - statement_timestamp()) + interval '1 second'";
/** As PreviousSecretsBound1765200000000 has it. */
const BOUND = 10;

/**
 * `webhook_secrets.seq`: the order in which a webhook's secrets were issued, from a sequence. Its secrets are
 * issued one at a time under the webhook's row lock, each replacing the one before, so this is also the order in
 * which they were replaced. Their `created_at` is not: a rotation is not dated after a last change more than a
 * second ahead of its clock (a replica whose clock runs ahead), so the secret such a replica issued can be dated
 * after the ones that replaced it. The ten previous secrets a webhook keeps were chosen by `created_at`: the
 * oldest to go was then a secret replaced later, and the one dated ahead, replaced first, stayed. Now the one
 * replaced first goes, in `rotate_webhook_secret(…)` (the twelve-parameter one, as PreviousSecretsBound1765200000000
 * left it otherwise) and in the rotation sweep, and the signing set and `secret-status` list previous secrets
 * newest first in this order.
 *
 * No rewrite: the column is added without a default (a catalog change, whatever the table's size), then given
 * one, which only new rows take. Rows from before stay NULL: all of them were issued before any that has a
 * number, and among themselves keep the `created_at` order.
 */
export class SecretsReplacementOrder1765600000000 implements MigrationInterface {
  name = 'SecretsReplacementOrder1765600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE webhook_secrets ADD COLUMN seq bigint`);
    await q.query(`CREATE SEQUENCE webhook_secrets_seq_seq OWNED BY webhook_secrets.seq`);
    await q.query(
      `ALTER TABLE webhook_secrets ALTER COLUMN seq SET DEFAULT nextval('webhook_secrets_seq_seq')`,
    );
    await q.query(
      rotateWebhookSecretSql(lastChangeSql(HORIZON), true, HORIZON, BOUND, 'seq NULLS FIRST, created_at, id'),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    // As PreviousSecretsBound1765200000000 left it; dropping the column drops its sequence.
    await q.query(rotateWebhookSecretSql(lastChangeSql(HORIZON), true, HORIZON, BOUND));
    await q.query(`ALTER TABLE webhook_secrets DROP COLUMN seq`);
  }
}
