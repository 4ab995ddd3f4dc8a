import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes for the filters of `GET /v1/audit-events`: `webhook_id` and `type`. The only index by project was
 * (project_id, occurred_at, seq), so either filter read the project's whole history (a year of it) to fill a
 * page, and Postgres, seeing that, scanned the whole table instead: on 3M events (one project with 1.2M) a page
 * of a webhook with few events took about 1 s, one of a rare type about 0.5 s, growing with every project's
 * history. Each index keeps the route's order (occurred_at, seq, both descending) after the filter's column, so
 * the cursor's keyset condition and `since`/`until` stay index conditions: about 0.05 ms. The price is two index
 * entries per event written and per event relayed (marking it published is not a HOT update).
 *
 * Built in the migration's transaction, not CONCURRENTLY, as DeletedWebhooksIndex1764900000000 explains: the
 * builds hold off writes to `audit_events` (every change of the service writes one) until the migration commits,
 * about 10 s for 3M rows on a 2-core machine. On a very large installation, build them beforehand with
 * CREATE INDEX CONCURRENTLY under these names; IF NOT EXISTS then leaves them as they are.
 */
export class AuditHistoryFilterIndexes1765400000000 implements MigrationInterface {
  name = 'AuditHistoryFilterIndexes1765400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX IF NOT EXISTS audit_events_project_webhook_idx
         ON audit_events (project_id, webhook_id, occurred_at DESC, seq DESC)`,
    );
    await q.query(
      `CREATE INDEX IF NOT EXISTS audit_events_project_type_idx
         ON audit_events (project_id, type, occurred_at DESC, seq DESC)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_project_type_idx`);
    await q.query(`DROP INDEX audit_events_project_webhook_idx`);
  }
}
