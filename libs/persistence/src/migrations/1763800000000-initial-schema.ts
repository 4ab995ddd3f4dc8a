import type { MigrationInterface, QueryRunner } from 'typeorm';

/** API keys, webhooks, their encrypted secrets and the audit outbox/history. */
export class InitialSchema1763800000000 implements MigrationInterface {
  name = 'InitialSchema1763800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE api_keys (
        id          text PRIMARY KEY,
        project_id  uuid NOT NULL,
        name        text,
        key_hash    text NOT NULL,
        created_at  timestamptz NOT NULL,
        revoked_at  timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash)`);
    await q.query(`CREATE INDEX api_keys_project_idx ON api_keys (project_id)`);

    await q.query(`
      CREATE TABLE webhooks (
        id                text PRIMARY KEY,
        project_id        uuid NOT NULL,
        url               text NOT NULL,
        description       text,
        subscribed_events text[] NOT NULL,
        enabled           boolean NOT NULL,
        created_at        timestamptz NOT NULL,
        updated_at        timestamptz NOT NULL,
        deleted_at        timestamptz
      )`);
    // Live webhooks of a project, oldest first: the list route and the per-project limit read this.
    await q.query(
      `CREATE INDEX webhooks_project_live_idx ON webhooks (project_id, created_at, id) WHERE deleted_at IS NULL`,
    );

    await q.query(`
      CREATE TABLE webhook_secrets (
        id          uuid PRIMARY KEY,
        webhook_id  text NOT NULL REFERENCES webhooks (id),
        state       text NOT NULL CHECK (state IN ('current', 'previous')),
        trigger     text NOT NULL CHECK (trigger IN ('created', 'manual', 'scheduled')),
        claimed     boolean NOT NULL,
        key_id      text NOT NULL,
        ciphertext  bytea NOT NULL,
        fingerprint text NOT NULL,
        created_at  timestamptz NOT NULL,
        expires_at  timestamptz,
        CHECK ((state = 'current') = (expires_at IS NULL))
      )`);
    // Exactly one current secret per webhook, whatever races.
    await q.query(
      `CREATE UNIQUE INDEX webhook_secrets_one_current_key ON webhook_secrets (webhook_id) WHERE state = 'current'`,
    );
    await q.query(
      `CREATE INDEX webhook_secrets_webhook_idx ON webhook_secrets (webhook_id, created_at DESC)`,
    );
    // Housekeeping finds expired previous secrets through this.
    await q.query(
      `CREATE INDEX webhook_secrets_expiry_idx ON webhook_secrets (expires_at) WHERE state = 'previous'`,
    );

    await q.query(`
      CREATE TABLE audit_events (
        seq          bigserial PRIMARY KEY,
        id           text NOT NULL UNIQUE,
        project_id   uuid NOT NULL,
        webhook_id   text,
        type         text NOT NULL,
        occurred_at  timestamptz NOT NULL,
        event        jsonb NOT NULL,
        published_at timestamptz
      )`);
    // The relay's queue: unpublished rows in commit order.
    await q.query(
      `CREATE INDEX audit_events_unpublished_idx ON audit_events (seq) WHERE published_at IS NULL`,
    );
    // Project history, newest first, and retention.
    await q.query(
      `CREATE INDEX audit_events_project_idx ON audit_events (project_id, occurred_at DESC, seq DESC)`,
    );
    await q.query(`CREATE INDEX audit_events_occurred_idx ON audit_events (occurred_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_events`);
    await q.query(`DROP TABLE webhook_secrets`);
    await q.query(`DROP TABLE webhooks`);
    await q.query(`DROP TABLE api_keys`);
  }
}
