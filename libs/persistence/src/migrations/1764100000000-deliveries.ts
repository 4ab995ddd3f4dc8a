import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The delivery log: one row per (event, webhook), updated by every attempt, kept for 7 days. */
export class Deliveries1764100000000 implements MigrationInterface {
  name = 'Deliveries1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE deliveries (
        id                uuid PRIMARY KEY,
        webhook_id        text NOT NULL REFERENCES webhooks (id),
        project_id        uuid NOT NULL,
        external_event_id text NOT NULL,
        event_type        text NOT NULL,
        payload           text NOT NULL,
        status            text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
        attempt           integer NOT NULL DEFAULT 0,
        response_status   integer,
        error_message     text,
        scheduled_at      timestamptz NOT NULL,
        completed_at      timestamptz,
        created_at        timestamptz NOT NULL
      ) WITH (fillfactor = 80)`);
    // fillfactor: every row is updated at least twice (claim, outcome); room on the page lets the claim, which
    // touches no indexed column, be a HOT update.
    // A published event that is read again (crash before XACK, reclaimed entry) must not make a second delivery.
    await q.query(
      `CREATE UNIQUE INDEX deliveries_event_webhook_key ON deliveries (external_event_id, webhook_id)`,
    );
    // The delivery log of one webhook, newest first (GET /v1/webhooks/{id}/events and its pagination).
    await q.query(
      `CREATE INDEX deliveries_webhook_created_idx ON deliveries (webhook_id, created_at DESC, id DESC)`,
    );
    // The since/until filters of the same route work on the scheduled time.
    await q.query(`CREATE INDEX deliveries_webhook_scheduled_idx ON deliveries (webhook_id, scheduled_at)`);
    // Retention: the purge deletes the oldest rows in bounded batches.
    await q.query(`CREATE INDEX deliveries_created_idx ON deliveries (created_at)`);
    // The rescue sweep finds pending deliveries whose job was lost; only pending rows are worth indexing.
    await q.query(
      `CREATE INDEX deliveries_pending_idx ON deliveries (scheduled_at) WHERE status = 'pending'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE deliveries`);
  }
}
