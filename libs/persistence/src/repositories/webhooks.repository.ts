import type { EntityManager } from 'typeorm';
import { WebhookEntity } from '../entities/webhook.entity';
import type { NewAuditEvent } from './audit-events.repository';
import type { NewSecretRow } from './webhook-secrets.repository';

/** What a rotation needs to know of the current secret. */
export interface CurrentSecretState {
  id: string;
  claimed: boolean;
  fingerprint: string;
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
  return w;
}

/** Fields of a webhook that an update may change. */
export type WebhookChanges = Partial<
  Pick<WebhookEntity, 'url' | 'description' | 'subscribedEvents' | 'enabled'>
>;

/** Webhooks. "Live" means not deleted; deleted webhooks are invisible to every read here. */
export class WebhooksRepository {
  constructor(private readonly manager: EntityManager) {}

  private get repo() {
    return this.manager.getRepository(WebhookEntity);
  }

  /** Gives a slot back (on delete). */
  async releaseSlot(projectId: string): Promise<void> {
    await this.manager.query(
      'UPDATE project_quotas SET live_webhooks = live_webhooks - 1 WHERE project_id = $1 AND live_webhooks > 0',
      [projectId],
    );
  }

  /**
   * Holds back the project's creates until the transaction ends (they wait on the same counter row), for
   * changes that must see every webhook of the project, such as setting a project default policy.
   */
  async lockProjectCreates(projectId: string): Promise<void> {
    await this.manager.query(
      `INSERT INTO project_quotas (project_id, live_webhooks) VALUES ($1, 0)
       ON CONFLICT (project_id) DO UPDATE SET live_webhooks = project_quotas.live_webhooks`,
      [projectId],
    );
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
       WHERE project_id = $1`,
      [projectId, policy?.intervalDays ?? null, policy?.gracePeriodHours ?? null, policy?.createdAt ?? null],
    );
  }

  /**
   * Creates a webhook in one statement, within the project's limit: takes one of its `limit` live slots
   * (the upsert row-locks the project's counter, so the limit holds however many creates race, and re-checks
   * the condition on the latest row version), inserts the webhook, its first secret, its schedule under the
   * project default policy read from that same latest version, and its audit event. Returns false, having
   * changed nothing, when the project is at its limit.
   */
  async insertWithinLimit(
    webhook: WebhookEntity,
    limit: number,
    secret: NewSecretRow,
    audit: NewAuditEvent,
  ): Promise<boolean> {
    const rows: { created: number }[] = await this.manager.query(
      `WITH slot AS (
         INSERT INTO project_quotas (project_id, live_webhooks) VALUES ($2, 1)
         ON CONFLICT (project_id) DO UPDATE SET live_webhooks = project_quotas.live_webhooks + 1
         WHERE project_quotas.live_webhooks < $18
         RETURNING default_interval_days, default_grace_period_hours, default_created_at
       ), w AS (
         INSERT INTO webhooks (id, project_id, url, description, subscribed_events, enabled, created_at, updated_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, $7 FROM slot
         RETURNING id
       ), s AS (
         INSERT INTO webhook_secrets (id, webhook_id, state, trigger, claimed, key_id, ciphertext, fingerprint, created_at)
         SELECT $8, w.id, 'current', $9, $10, $11, $12, $13, $7 FROM w
       ), r AS (
         INSERT INTO rotation_schedules
           (webhook_id, project_id, scope, interval_days, grace_period_hours, anchor_at, next_rotation_at)
         SELECT w.id, $2, 'project', slot.default_interval_days, slot.default_grace_period_hours,
                GREATEST($7::timestamptz, slot.default_created_at),
                GREATEST($7::timestamptz, slot.default_created_at) + slot.default_interval_days * 24 * interval '1 hour'
         FROM slot, w WHERE slot.default_interval_days IS NOT NULL
       ), a AS (
         INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event)
         SELECT $14, $2, w.id, $15, $16, $17::jsonb FROM w
       )
       SELECT count(*)::int AS created FROM w`,
      [
        webhook.id,
        webhook.projectId,
        webhook.url,
        webhook.description,
        webhook.subscribedEvents,
        webhook.enabled,
        webhook.createdAt,
        secret.id,
        secret.trigger,
        secret.claimed,
        secret.keyId,
        secret.ciphertext,
        secret.fingerprint,
        audit.id,
        audit.type,
        audit.occurredAt,
        JSON.stringify(audit.event),
        limit,
      ],
    );
    return rows[0]?.created === 1;
  }

  /**
   * Row-locks a live webhook of the project, then reads its current secret's state: the start of a rotation
   * (concurrent rotations of one webhook queue on the lock). Two statements on purpose: after waiting for
   * the lock, Postgres re-checks only the locked row, so a secret joined into the locking statement would
   * come from before the previous holder's commit; the second statement's snapshot sees it.
   */
  async lockLiveWithCurrentSecret(
    projectId: string,
    id: string,
  ): Promise<{ webhook: WebhookEntity; current: CurrentSecretState | null } | null> {
    const rows: Record<string, unknown>[] = await this.manager.query(
      'SELECT * FROM webhooks WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL FOR UPDATE',
      [id, projectId],
    );
    if (rows.length === 0) return null;
    const secrets: CurrentSecretState[] = await this.manager.query(
      "SELECT id, claimed, fingerprint FROM webhook_secrets WHERE webhook_id = $1 AND state = 'current'",
      [id],
    );
    return { webhook: webhookFromRow(rows[0]), current: secrets[0] ?? null };
  }

  async findLive(projectId: string, id: string): Promise<WebhookEntity | null> {
    return this.repo
      .createQueryBuilder('w')
      .where('w.id = :id AND w.project_id = :projectId AND w.deleted_at IS NULL', { id, projectId })
      .getOne();
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
    return this.repo
      .createQueryBuilder('w')
      .where('w.project_id = :projectId AND w.deleted_at IS NULL', { projectId })
      .orderBy('w.created_at', 'ASC')
      .addOrderBy('w.id', 'ASC')
      .getMany();
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

  async softDelete(id: string, at: Date): Promise<void> {
    await this.repo.update({ id }, { deletedAt: at, updatedAt: at, enabled: false });
  }
}
