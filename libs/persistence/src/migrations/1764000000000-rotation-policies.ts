import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Rotation policies (per webhook and project default) and the per-webhook schedule the worker sweeps. */
export class RotationPolicies1764000000000 implements MigrationInterface {
  name = 'RotationPolicies1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE rotation_policies (
        id                 uuid PRIMARY KEY,
        project_id         uuid NOT NULL,
        webhook_id         text REFERENCES webhooks (id),
        interval_days      integer NOT NULL CHECK (interval_days BETWEEN 1 AND 365),
        grace_period_hours integer NOT NULL CHECK (grace_period_hours BETWEEN 0 AND 168),
        created_at         timestamptz NOT NULL,
        updated_at         timestamptz NOT NULL
      )`);
    // At most one project default per project, whatever PUTs race.
    await q.query(
      `CREATE UNIQUE INDEX rotation_policies_project_default_key ON rotation_policies (project_id) WHERE webhook_id IS NULL`,
    );
    // At most one own policy per webhook.
    await q.query(
      `CREATE UNIQUE INDEX rotation_policies_webhook_key ON rotation_policies (webhook_id) WHERE webhook_id IS NOT NULL`,
    );

    // The effective schedule of every live webhook that has a policy (its own or the project default),
    // denormalised so the sweep reads one narrow table through one index instead of resolving policies.
    await q.query(`
      CREATE TABLE rotation_schedules (
        webhook_id         text PRIMARY KEY REFERENCES webhooks (id),
        project_id         uuid NOT NULL,
        scope              text NOT NULL CHECK (scope IN ('webhook', 'project')),
        interval_days      integer NOT NULL,
        grace_period_hours integer NOT NULL,
        anchor_at          timestamptz NOT NULL,
        next_rotation_at   timestamptz NOT NULL,
        notice_sent_for    timestamptz
      )`);
    // The sweep: due rows in due order, read in bounded batches.
    await q.query(`CREATE INDEX rotation_schedules_due_idx ON rotation_schedules (next_rotation_at)`);
    // Advance notices still to send; rows whose notice went out drop out of this index.
    await q.query(
      `CREATE INDEX rotation_schedules_notice_idx ON rotation_schedules (next_rotation_at) WHERE notice_sent_for IS NULL`,
    );
    // No index on project_id: the rare project-wide statements reach their rows through the project's live
    // webhooks (webhooks_project_live_idx), and every index here costs the sweep one entry per rotation.
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE rotation_schedules`);
    await q.query(`DROP TABLE rotation_policies`);
  }
}
