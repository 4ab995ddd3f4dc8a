import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A stored first response of an `Idempotency-Key` forgets its webhook secret when the secret is destroyed.
 *
 * The first response of a create or a rotate-secret holds the new secret, sealed with the key ring, for the 24
 * hours a replay may ask for it. A replay was already refused once the secret was retired, but the sealed copy
 * stayed: a secret "destroyed at once" (its webhook deleted, a zero grace period, previous secrets revoked, one
 * past the ten a webhook keeps, or expired) could still be opened from `idempotency_keys` by whoever holds the
 * database and the key ring, for up to a day. Now the response is stored with the fingerprint of the secret in it
 * (`secret_fingerprint`) and its webhook's id (`webhook_id`), and deleting a row of `webhook_secrets` empties the
 * responses that hold that secret, in the deleting transaction, whichever path deletes it (a trigger: the API,
 * the sweep, housekeeping and the database functions all delete secrets). The row stays, `done` with no response
 * and its webhook's id: a replay is refused as it was before (404 once the webhook is deleted, otherwise 409 for a
 * retired secret), and the key still stands for the one request. Responses stored before this migration carry
 * no fingerprint and keep their copy until they expire (24 hours at most).
 *
 * The index is partial (only responses that hold a secret) and built in the migration's transaction, as
 * DeletedWebhooksIndex1764900000000 explains; the table holds one day of keys.
 */
export class IdempotentResponsesForgetSecrets1765300000000 implements MigrationInterface {
  name = 'IdempotentResponsesForgetSecrets1765300000000';

  async up(q: QueryRunner): Promise<void> {
    // Nullable, no default: a catalog change only, whatever the table's size.
    await q.query(
      `ALTER TABLE idempotency_keys ADD COLUMN secret_fingerprint text, ADD COLUMN webhook_id text`,
    );
    await q.query(
      `CREATE INDEX idempotency_keys_secret_idx ON idempotency_keys (secret_fingerprint)
         WHERE secret_fingerprint IS NOT NULL`,
    );
    await q.query(`
      CREATE FUNCTION forget_idempotent_responses_of_secret() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE idempotency_keys SET response = NULL, key_id = NULL, secret_fingerprint = NULL
        WHERE secret_fingerprint = OLD.fingerprint;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER webhook_secrets_forget_idempotent_responses AFTER DELETE ON webhook_secrets
      FOR EACH ROW EXECUTE FUNCTION forget_idempotent_responses_of_secret()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER webhook_secrets_forget_idempotent_responses ON webhook_secrets`);
    await q.query(`DROP FUNCTION forget_idempotent_responses_of_secret()`);
    await q.query(`DROP INDEX idempotency_keys_secret_idx`);
    await q.query(`ALTER TABLE idempotency_keys DROP COLUMN secret_fingerprint, DROP COLUMN webhook_id`);
  }
}
