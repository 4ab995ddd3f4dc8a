import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Indexes for the audit history route's filters. */
export class AuditHistoryIndexes1763900000000 implements MigrationInterface {
  name = 'AuditHistoryIndexes1763900000000';

  async up(q: QueryRunner): Promise<void> {
    // GET /v1/audit-events?webhook_id=…: one webhook's history, newest first, without walking the whole
    // project's history (a busy project can hold hundreds of thousands of rows over the retention period).
    await q.query(
      `CREATE INDEX audit_events_webhook_idx ON audit_events (project_id, webhook_id, occurred_at DESC, seq DESC)
       WHERE webhook_id IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_webhook_idx`);
  }
}
