import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Splits a project's live-webhook counter into shards, so that creates of one project stop queueing on a
 * single row lock held until each commit's WAL flush (that queue capped a busy project at a few hundred
 * creates per second, whatever the hardware).
 *
 * Shard 0 is the head row: it exists for every project that has a counter, carries the project default
 * rotation policy, and is the first row every exact operation locks. Further shards (1..n-1) are only
 * added by a holder of the head row. Two ways to take a slot, both in `create_webhook_within_limit`:
 *  - sharded, when the project is far from its limit: lock ONE shard (increment it), then read the sum in a
 *    fresh snapshot. Every other create in flight holds a different shard, so at most n-1 others can still
 *    commit; the slot is kept only if `sum + n - 1 <= limit`, otherwise the call fails with SQLSTATE WQ001
 *    and the caller retries exactly.
 *  - exact, otherwise (and always with one shard, the default for small limits): lock every shard in
 *    order, head first, then count. Policy changes take the same locks (`lock_project_quota`); a delete, which
 *    only lowers the count, locks one shard that counts a webhook (`WebhooksRepository.lockReleasableShard`).
 * A sharded create holds one lock and waits for no other, and exact operations lock in one order: no
 * deadlock. The limit holds however many creates race, exactly as with one counter row.
 */
export class ProjectQuotaShards1764500000000 implements MigrationInterface {
  name = 'ProjectQuotaShards1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE project_quotas ADD COLUMN shard smallint NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE project_quotas DROP CONSTRAINT project_quotas_pkey`);
    await q.query(`ALTER TABLE project_quotas ADD PRIMARY KEY (project_id, shard)`);
    await q.query(`
      CREATE FUNCTION lock_project_quota(p_project uuid) RETURNS bigint LANGUAGE plpgsql AS $$
      DECLARE
        v_total bigint;
      BEGIN
        INSERT INTO project_quotas (project_id, shard, live_webhooks) VALUES (p_project, 0, 0) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM project_quotas WHERE project_id = p_project AND shard = 0 FOR UPDATE;
        -- A fresh snapshot taken after the head row's lock: it sees every shard row, since only holders of
        -- the head row add them.
        SELECT sum(live_webhooks) INTO v_total FROM (
          SELECT live_webhooks FROM project_quotas WHERE project_id = p_project ORDER BY shard FOR UPDATE) q;
        RETURN v_total;
      END $$`);
    await q.query(`
      CREATE FUNCTION create_webhook_within_limit(
        p_limit integer, p_shards integer, p_exact boolean,
        p_id text, p_project uuid, p_url text, p_description text, p_events text[], p_enabled boolean,
        p_now timestamptz,
        p_secret_id uuid, p_trigger text, p_claimed boolean, p_key_id text, p_ciphertext bytea,
        p_fingerprint text,
        p_audit_id text, p_audit_type text, p_audit_occurred_at timestamptz, p_audit_event jsonb
      ) RETURNS boolean LANGUAGE plpgsql AS $$
      DECLARE
        v_total bigint;
        v_count integer;
        v_shard integer;
        v_sharded boolean := false;
        v_head project_quotas%ROWTYPE;
      BEGIN
        IF NOT p_exact AND p_shards > 1 THEN
          SELECT sum(live_webhooks), count(*) INTO v_total, v_count FROM project_quotas WHERE project_id = p_project;
          IF v_count > 1 AND v_total + 2 * v_count <= p_limit THEN
            -- drawn once: random() in the WHERE clause would be drawn again for every row
            v_shard := floor(random() * v_count)::int;
            UPDATE project_quotas SET live_webhooks = live_webhooks + 1 WHERE project_id = p_project AND shard = v_shard;
            SELECT sum(live_webhooks) INTO v_total FROM project_quotas WHERE project_id = p_project;
            IF v_total + v_count - 1 > p_limit THEN
              RAISE EXCEPTION 'project % is too close to its webhook limit for a sharded create', p_project
                USING ERRCODE = 'WQ001';
            END IF;
            v_sharded := true;
          END IF;
        END IF;
        IF NOT v_sharded THEN
          IF lock_project_quota(p_project) >= p_limit THEN
            RETURN false;
          END IF;
          INSERT INTO project_quotas (project_id, shard, live_webhooks)
            SELECT p_project, g, 0 FROM generate_series(1, p_shards - 1) g ON CONFLICT DO NOTHING;
          UPDATE project_quotas SET live_webhooks = live_webhooks + 1 WHERE project_id = p_project AND shard = 0;
        END IF;
        -- Read after the slot's lock: a policy change in flight holds every shard, so this sees it committed.
        SELECT * INTO v_head FROM project_quotas WHERE project_id = p_project AND shard = 0;
        INSERT INTO webhooks (id, project_id, url, description, subscribed_events, enabled, created_at, updated_at)
          VALUES (p_id, p_project, p_url, p_description, p_events, p_enabled, p_now, p_now);
        INSERT INTO webhook_secrets (id, webhook_id, state, trigger, claimed, key_id, ciphertext, fingerprint, created_at)
          VALUES (p_secret_id, p_id, 'current', p_trigger, p_claimed, p_key_id, p_ciphertext, p_fingerprint, p_now);
        IF v_head.default_interval_days IS NOT NULL THEN
          INSERT INTO rotation_schedules
            (webhook_id, project_id, scope, interval_days, grace_period_hours, anchor_at, next_rotation_at)
          VALUES (p_id, p_project, 'project', v_head.default_interval_days, v_head.default_grace_period_hours,
            GREATEST(p_now, v_head.default_created_at),
            GREATEST(p_now, v_head.default_created_at) + v_head.default_interval_days * 24 * interval '1 hour');
        END IF;
        INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event)
          VALUES (p_audit_id, p_project, p_id, p_audit_type, p_audit_occurred_at, p_audit_event);
        RETURN true;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION create_webhook_within_limit(integer, integer, boolean, text, uuid, text, text,
      text[], boolean, timestamptz, uuid, text, boolean, text, bytea, text, text, text, timestamptz, jsonb)`);
    await q.query(`DROP FUNCTION lock_project_quota(uuid)`);
    // Back to one counter row per project: the shards' counts are summed into the head row.
    await q.query(`
      UPDATE project_quotas h SET live_webhooks = s.total
      FROM (SELECT project_id, sum(live_webhooks) AS total FROM project_quotas GROUP BY project_id) s
      WHERE h.project_id = s.project_id AND h.shard = 0`);
    await q.query(`DELETE FROM project_quotas WHERE shard <> 0`);
    await q.query(`ALTER TABLE project_quotas DROP CONSTRAINT project_quotas_pkey`);
    await q.query(`ALTER TABLE project_quotas DROP COLUMN shard`);
    await q.query(`ALTER TABLE project_quotas ADD PRIMARY KEY (project_id)`);
  }
}
