import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One row per project counting its live webhooks, with a copy of the project's default rotation policy. Creating a webhook increments it with a conditional
 * upsert (`… WHERE live_webhooks < limit`), which Postgres re-checks on the latest row version under
 * contention: the per-project limit holds however many creates race, and the row lock lasts only for the
 * short create transaction instead of a count over the project's webhooks under an advisory lock.
 */
export class ProjectQuotas1764300000000 implements MigrationInterface {
  name = 'ProjectQuotas1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE project_quotas (
        project_id    uuid PRIMARY KEY,
        live_webhooks integer NOT NULL CHECK (live_webhooks >= 0),
        -- the project default rotation policy (null when there is none), kept in step with rotation_policies
        default_interval_days      integer,
        default_grace_period_hours integer,
        default_created_at         timestamptz
      )`);
    await q.query(`
      INSERT INTO project_quotas (project_id, live_webhooks)
      SELECT project_id, count(*) FROM webhooks WHERE deleted_at IS NULL GROUP BY project_id`);
    await q.query(`
      INSERT INTO project_quotas (project_id, live_webhooks, default_interval_days, default_grace_period_hours, default_created_at)
      SELECT project_id, 0, interval_days, grace_period_hours, created_at FROM rotation_policies WHERE webhook_id IS NULL
      ON CONFLICT (project_id) DO UPDATE SET default_interval_days = excluded.default_interval_days,
        default_grace_period_hours = excluded.default_grace_period_hours, default_created_at = excluded.default_created_at`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE project_quotas`);
  }
}
