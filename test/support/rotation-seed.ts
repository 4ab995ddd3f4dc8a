import type { DataSource } from '@app/persistence';

/**
 * Inserts `count` live webhooks of `projectId`, each with a claimed current secret and a schedule due at
 * `dueAt`, set-based (no API round trips, no per-project limit). The secret material is a placeholder: the
 * sweep never opens the outgoing secret. Returns the webhook ids.
 */
export async function seedDueWebhooks(
  ds: DataSource,
  opts: {
    projectId: string;
    count: number;
    dueAt: Date;
    createdAt: Date;
    idPrefix: string;
    graceHours?: number;
  },
): Promise<string[]> {
  const rows: { id: string }[] = await ds.query(
    `INSERT INTO webhooks (id, project_id, url, description, subscribed_events, enabled, created_at, updated_at)
     SELECT 'wh_' || $3 || lpad(g::text, 26 - length($3), '0'), $1, 'https://hooks.example.com/seed', NULL,
            ARRAY['task.completed'], true, $4, $4
     FROM generate_series(1, $2) g
     RETURNING id`,
    [opts.projectId, opts.count, opts.idPrefix, opts.createdAt],
  );
  const ids = rows.map((r) => r.id);
  await ds.query(
    `INSERT INTO webhook_secrets (id, webhook_id, state, trigger, claimed, key_id, ciphertext, fingerprint, created_at)
     SELECT gen_random_uuid(), id, 'current', 'created', true, 'seed', '\\x00'::bytea,
            'sha256:' || substr(md5(id), 1, 16), $2
     FROM unnest($1::text[]) AS id`,
    [ids, opts.createdAt],
  );
  await ds.query(
    `INSERT INTO rotation_schedules
       (webhook_id, project_id, scope, interval_days, grace_period_hours, anchor_at, next_rotation_at, notice_sent_for)
     SELECT id, $2, 'webhook', 30, $5, $3, $4, $4 FROM unnest($1::text[]) AS id`,
    [ids, opts.projectId, opts.createdAt, opts.dueAt, opts.graceHours ?? 24],
  );
  return ids;
}
