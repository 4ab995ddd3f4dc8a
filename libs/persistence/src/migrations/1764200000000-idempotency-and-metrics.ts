import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Stored first responses of Idempotency-Key requests, and an index that keeps the rotation metric cheap. */
export class IdempotencyAndMetrics1764200000000 implements MigrationInterface {
  name = 'IdempotencyAndMetrics1764200000000';

  async up(q: QueryRunner): Promise<void> {
    // One row per (project, key). The row is inserted before the request runs (state 'pending'), which is
    // what keeps two concurrent duplicates from both executing; the response is stored encrypted once done.
    await q.query(`
      CREATE TABLE idempotency_keys (
        project_id    uuid NOT NULL,
        key           text NOT NULL,
        request_hash  text NOT NULL,
        state         text NOT NULL CHECK (state IN ('pending', 'done')),
        status        integer,
        key_id        text,
        response      bytea,
        created_at    timestamptz NOT NULL,
        expires_at    timestamptz NOT NULL,
        PRIMARY KEY (project_id, key)
      )`);
    // Housekeeping deletes expired rows in batches through this.
    await q.query(`CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at)`);
    // GET /metrics counts rotations by trigger at scrape time; this keeps the count off the rest of the audit
    // history (which is kept for a year and dominated by other event types).
    await q.query(
      `CREATE INDEX audit_events_rotation_trigger_idx ON audit_events ((event->'data'->>'trigger'))
         WHERE type = 'webhook.secret.rotated'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_rotation_trigger_idx`);
    await q.query(`DROP TABLE idempotency_keys`);
  }
}
