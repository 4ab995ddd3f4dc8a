import type { EntityManager } from 'typeorm';
import { WebhookEntity } from '../entities/webhook.entity';
import type { NewAuditEvent } from './audit-events.repository';
import { returnedRows, type NewSecretRow } from './webhook-secrets.repository';
import { sqlState, type NamedStatement, type StatementRunner } from '../statements';

// Projects whose limit is at least this large count their live webhooks in QUOTA_SHARDS rows, so that their
// creates do not queue on one row lock; smaller limits are reached long before that queue could matter.
const SHARDED_FROM_LIMIT = 1024;
const QUOTA_SHARDS = 16;

/** A new secret row as the database functions take it: id, trigger, claimed, key id, ciphertext, fingerprint. */
function secretParams(secret: NewSecretRow): unknown[] {
  return [secret.id, secret.trigger, secret.claimed, secret.keyId, secret.ciphertext, secret.fingerprint];
}

/** A webhook from a raw `SELECT w.*` row. */
export function webhookFromRow(r: Record<string, unknown>): WebhookEntity {
  const w = new WebhookEntity();
  w.id = r.id as string;
  w.projectId = r.project_id as string;
  w.url = r.url as string;
  w.description = (r.description as string | null) ?? null;
  w.subscribedEvents = r.subscribed_events as string[];
  w.enabled = r.enabled as boolean;
  w.createdAt = new Date(r.created_at as string);
  w.updatedAt = new Date(r.updated_at as string);
  w.deletedAt = r.deleted_at == null ? null : new Date(r.deleted_at as string);
  w.lastChangeAt = r.last_change_at == null ? null : new Date(r.last_change_at as string);
  return w;
}

/** The columns {@link webhookFromRow} reads, named: a prepared statement's result must not change with the table. */
const WEBHOOK_COLUMNS =
  'id, project_id, url, description, subscribed_events, enabled, created_at, updated_at, deleted_at, last_change_at';

const FIND_LIVE: NamedStatement = {
  name: 'webhook_find_live',
  text: `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL`,
};

const LIST_LIVE: NamedStatement = {
  name: 'webhook_list_live',
  text: `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE project_id = $1 AND deleted_at IS NULL ORDER BY created_at, id`,
};

/** Fields of a webhook that an update may change. */
export type WebhookChanges = Partial<
  Pick<WebhookEntity, 'url' | 'description' | 'subscribedEvents' | 'enabled'>
>;

/** Webhooks. "Live" means not deleted; deleted webhooks are invisible to every read here. */
export class WebhooksRepository {
  constructor(
    private readonly manager: EntityManager,
    private readonly statements: StatementRunner,
  ) {}

  private get repo() {
    return this.manager.getRepository(WebhookEntity);
  }

  /**
   * Takes, for a delete, one counter shard of the project that can give a slot back (it counts at least one
   * webhook) and row-locks it until the transaction ends: one that no other transaction holds, or else, waiting,
   * one at random. Returns it, or null when no shard counts a webhook (the caller then takes them all,
   * {@link lockProjectCreates}). A delete only lowers the count, so one shard is enough for the limit: a create
   * in flight that reads the count before the delete commits sees one webhook too many (it is refused, or retried
   * exactly, which waits for the delete), never one too few. Concurrent deletes of a sharded project thus spread
   * over the shards instead of queueing one by one behind every create in flight. Holding nothing else while it
   * waits, a delete cannot deadlock here; call it first (the lock order of every change: the project's counter,
   * then the webhook row).
   */
  async lockReleasableShard(projectId: string): Promise<number | null> {
    for (const pick of [
      'ORDER BY shard LIMIT 1 FOR UPDATE SKIP LOCKED',
      'ORDER BY random() LIMIT 1 FOR UPDATE',
    ]) {
      const rows: { shard: number }[] = await this.manager.query(
        `SELECT shard FROM project_quotas WHERE project_id = $1 AND live_webhooks > 0 ${pick}`,
        [projectId],
      );
      if (rows.length > 0) return rows[0].shard;
    }
    return null;
  }

  /**
   * Gives a slot back (on delete): from `shard`, locked by {@link lockReleasableShard}, or else from the first
   * shard that counts a webhook, all of them locked by {@link lockProjectCreates} in the same transaction.
   */
  async releaseSlot(projectId: string, shard: number | null = null): Promise<void> {
    if (shard !== null) {
      await this.manager.query(
        'UPDATE project_quotas SET live_webhooks = live_webhooks - 1 WHERE project_id = $1 AND shard = $2',
        [projectId, shard],
      );
      return;
    }
    await this.manager.query(
      `UPDATE project_quotas SET live_webhooks = live_webhooks - 1
       WHERE project_id = $1 AND shard = (
         SELECT shard FROM project_quotas WHERE project_id = $1 AND live_webhooks > 0 ORDER BY shard LIMIT 1)`,
      [projectId],
    );
  }

  /**
   * Holds back the project's creates until the transaction ends (it locks every shard of the project's
   * counter, head first, and creates wait on them), for changes that must see every webhook of the project,
   * such as setting a project default policy or deleting a webhook.
   */
  async lockProjectCreates(projectId: string): Promise<void> {
    await this.manager.query('SELECT lock_project_quota($1)', [projectId]);
  }

  /**
   * Records the project default rotation policy (or its removal, with null) where creates read it. Call
   * after {@link lockProjectCreates} in the transaction that changes the policy.
   */
  async setCreateDefaultPolicy(
    projectId: string,
    policy: { intervalDays: number; gracePeriodHours: number; createdAt: Date } | null,
  ): Promise<void> {
    await this.manager.query(
      `UPDATE project_quotas SET default_interval_days = $2, default_grace_period_hours = $3, default_created_at = $4
       WHERE project_id = $1 AND shard = 0`,
      [projectId, policy?.intervalDays ?? null, policy?.gracePeriodHours ?? null, policy?.createdAt ?? null],
    );
  }

  /**
   * Creates a webhook in one round trip, within the project's limit: takes one of its `limit` live slots,
   * inserts the webhook, its first secret, its schedule under the project default policy, and its audit
   * event, all in one transaction (the `create_webhook_within_limit` function; the slot protocol is
   * described in the ProjectQuotaShards migration). The limit holds however many creates race. Returns
   * false, having changed nothing, when the project is at its limit.
   */
  async insertWithinLimit(
    webhook: WebhookEntity,
    limit: number,
    secret: NewSecretRow,
    audit: NewAuditEvent,
  ): Promise<boolean> {
    const shards = limit >= SHARDED_FROM_LIMIT ? QUOTA_SHARDS : 1;
    const run = async (exact: boolean): Promise<boolean> => {
      const rows: { created: boolean }[] = await this.manager.query(
        `SELECT create_webhook_within_limit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
           $16, $17, $18, $19, $20::jsonb) AS created`,
        [
          limit,
          shards,
          exact,
          webhook.id,
          webhook.projectId,
          webhook.url,
          webhook.description,
          webhook.subscribedEvents,
          webhook.enabled,
          webhook.createdAt,
          ...secretParams(secret),
          audit.id,
          audit.type,
          audit.occurredAt,
          JSON.stringify(audit.event),
        ],
      );
      return rows[0]?.created === true;
    };
    // Inside a transaction the refused sharded attempt would abort it: it runs under a savepoint, rolled back to.
    const savepoint = shards > 1 && this.manager.queryRunner !== undefined;
    try {
      if (savepoint) await this.manager.query('SAVEPOINT quota_slot');
      return await run(false);
    } catch (e) {
      // Too close to the limit for a sharded slot (nothing was written): take it exactly.
      if (sqlState(e) !== 'WQ001') throw e;
      if (savepoint) await this.manager.query('ROLLBACK TO SAVEPOINT quota_slot');
      return run(true);
    }
  }

  /**
   * Rotates the secret of a live webhook of the project now, in one round trip: the database function
   * `rotate_webhook_secret` (migration 1764600000000, which documents the retire rule) row-locks the webhook,
   * reads its current secret after the lock, retires it, makes `secret` current, restarts the rotation clock,
   * bumps `updated_at` and writes the audit event, whose `data` it completes with what it retired; and
   * `expiredAudit` (`webhook.secret.previous_expired`) for a previous secret it destroys, if any: with a zero
   * grace period the claimed secret it retires (migration 1765000000000), otherwise the oldest previous one
   * beyond MAX_PREVIOUS_SECRETS (migration 1765200000000). Outside a transaction the call is one on its own. Returns the updated webhook, or
   * null, having changed nothing, when the project has no such live webhook.
   */
  async rotateSecret(
    projectId: string,
    id: string,
    gracePeriodHours: number,
    secret: NewSecretRow,
    audit: NewAuditEvent,
    now: Date,
    expiredAudit: NewAuditEvent | null = null,
  ): Promise<WebhookEntity | null> {
    const rows: Record<string, unknown>[] = await this.manager.query(
      `SELECT * FROM rotate_webhook_secret($1::uuid, $2::text, $3::timestamptz, $4::int, $5::uuid, $6::text,
         $7::boolean, $8::text, $9::bytea, $10::text, $11::jsonb, $12::jsonb)`,
      [
        projectId,
        id,
        now,
        gracePeriodHours,
        ...secretParams(secret),
        JSON.stringify(audit.event),
        expiredAudit && JSON.stringify(expiredAudit.event),
      ],
    );
    return rows.length === 0 ? null : webhookFromRow(rows[0]);
  }

  /** A live webhook of the project, or null (another project's is not found either). */
  async findLive(projectId: string, id: string): Promise<WebhookEntity | null> {
    // Plain SQL on the hot read path: the query builder cost more CPU than the query itself.
    const rows = await this.statements.rows(FIND_LIVE, [id, projectId]);
    return rows.length === 0 ? null : webhookFromRow(rows[0]);
  }

  /** Like {@link findLive}, and row-locks the webhook until the transaction ends (serialises rotations). */
  async findLiveForUpdate(projectId: string, id: string): Promise<WebhookEntity | null> {
    const rows: Record<string, unknown>[] = await this.manager.query(
      'SELECT * FROM webhooks WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL FOR UPDATE',
      [id, projectId],
    );
    return rows.length === 0 ? null : webhookFromRow(rows[0]);
  }

  /** Writes a (row-locked) webhook's new field values and its audit event in one statement. */
  async updateWithAudit(webhook: WebhookEntity, audit: NewAuditEvent): Promise<void> {
    await this.manager.query(
      `WITH u AS (
         UPDATE webhooks SET url = $2, description = $3, subscribed_events = $4, enabled = $5, updated_at = $6
         WHERE id = $1
       )
       INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event)
       VALUES ($7, $8, $1, $9, $10, $11::jsonb)`,
      [
        webhook.id,
        webhook.url,
        webhook.description,
        webhook.subscribedEvents,
        webhook.enabled,
        webhook.updatedAt,
        audit.id,
        audit.projectId,
        audit.type,
        audit.occurredAt,
        JSON.stringify(audit.event),
      ],
    );
  }

  /** Live webhooks of a project, oldest first. */
  async listLive(projectId: string): Promise<WebhookEntity[]> {
    const rows = await this.statements.rows(LIST_LIVE, [projectId]);
    return rows.map(webhookFromRow);
  }

  /**
   * Row-locks the given webhooks (deleted ones included), in id order, for a change of their secrets outside any
   * rotation: the other writers of a webhook's secrets (rotations, the sweep, claims, revocations, deletes) hold its
   * webhook's row first, so taking the same lock first cannot deadlock with them (expiry waits for no row: it skips
   * locked secrets); the id order keeps two such callers from deadlocking with each other.
   */
  async lockForSecretChange(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.manager.query(
      'SELECT count(*) FROM (SELECT 1 FROM webhooks WHERE id = ANY($1) ORDER BY id FOR UPDATE) locked',
      [ids],
    );
  }

  /** The project of each of the given webhooks (deleted ones included). */
  async projectsOf(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows: { id: string; project_id: string }[] = await this.manager.query(
      'SELECT id, project_id FROM webhooks WHERE id = ANY($1)',
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.project_id]));
  }

  /**
   * Records the time of a change that leaves `updated_at` alone (see {@link WebhookEntity.lastChangeAt}), so
   * that the next change is dated after it. Call with the webhook row-locked, in the change's transaction.
   */
  async markChanged(id: string, at: Date): Promise<void> {
    await this.manager.query('UPDATE webhooks SET last_change_at = $2 WHERE id = $1', [id, at]);
  }

  /**
   * Removes up to `limit` webhooks deleted before `cutoff` that nothing refers to any more (their delivery log
   * purged, their secrets and rotation settings gone with the delete), oldest deletion first; returns how many.
   * A deleted webhook's row is kept only for its delivery log.
   */
  async purgeDeletedBefore(cutoff: Date, limit: number): Promise<number> {
    const result: unknown = await this.manager.query(
      `DELETE FROM webhooks WHERE id IN (
         SELECT w.id FROM webhooks w
          WHERE w.deleted_at < $1
            AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id)
            AND NOT EXISTS (SELECT 1 FROM webhook_secrets s WHERE s.webhook_id = w.id)
            AND NOT EXISTS (SELECT 1 FROM rotation_policies p WHERE p.webhook_id = w.id)
            AND NOT EXISTS (SELECT 1 FROM rotation_schedules r WHERE r.webhook_id = w.id)
          ORDER BY w.deleted_at
          LIMIT $2)
       RETURNING id`,
      [cutoff, limit],
    );
    return returnedRows(result).length;
  }

  async softDelete(id: string, at: Date): Promise<void> {
    await this.repo.update({ id }, { deletedAt: at, updatedAt: at, enabled: false });
  }
}
