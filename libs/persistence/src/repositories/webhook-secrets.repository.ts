import type { EntityManager } from 'typeorm';
import { WebhookSecretEntity } from '../entities/webhook-secret.entity';
import type { NewAuditEvent } from './audit-events.repository';

/** A new current secret, encrypted. */
export type NewSecretRow = Pick<
  WebhookSecretEntity,
  'id' | 'trigger' | 'claimed' | 'keyId' | 'ciphertext' | 'fingerprint'
>;

/** What happens to the outgoing current secret in a rotation. */
export type RetireAction =
  { kind: 'none' } | { kind: 'destroy'; id: string } | { kind: 'demote'; id: string; expiresAt: Date };

/** Encrypted signing secrets of webhooks. */
export class WebhookSecretsRepository {
  constructor(private readonly manager: EntityManager) {}

  private get repo() {
    return this.manager.getRepository(WebhookSecretEntity);
  }

  /**
   * One rotation of a row-locked webhook, in one statement: retires the outgoing secret (destroyed, or kept
   * as previous until `expiresAt`), inserts the new current one, restarts the rotation clock (the same
   * update as `RotationRepository.restartClock`), bumps the webhook's `updated_at` and writes the audit event.
   */
  async rotateCurrent(
    webhookId: string,
    retire: RetireAction,
    secret: NewSecretRow,
    audit: NewAuditEvent,
    now: Date,
  ): Promise<void> {
    const retireId = retire.kind === 'none' ? null : retire.id;
    const demoteUntil = retire.kind === 'demote' ? retire.expiresAt : null;
    await this.manager.query(
      `WITH gone AS (
         DELETE FROM webhook_secrets WHERE id = $2 AND $3::timestamptz IS NULL
         RETURNING id
       ), kept AS (
         UPDATE webhook_secrets SET state = 'previous', expires_at = $3 WHERE id = $2 AND $3::timestamptz IS NOT NULL
         RETURNING id
       ), fresh AS (
         INSERT INTO webhook_secrets (id, webhook_id, state, trigger, claimed, key_id, ciphertext, fingerprint, created_at)
         SELECT $4, $1, 'current', $5, $6, $7, $8, $9, $10
         -- reading both makes them run first: the old current row must leave that state before the new one
         -- appears (the partial unique index allows one current secret per webhook)
         FROM (SELECT count(*) FROM gone) g, (SELECT count(*) FROM kept) k
       ), clock AS (
         UPDATE rotation_schedules SET anchor_at = $10::timestamptz,
           next_rotation_at = $10::timestamptz + interval_days * 24 * interval '1 hour', notice_sent_for = NULL
         WHERE webhook_id = $1
       ), touched AS (
         UPDATE webhooks SET updated_at = $10 WHERE id = $1
       )
       INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event)
       VALUES ($11, $12, $1, $13, $14, $15::jsonb)`,
      [
        webhookId,
        retireId,
        demoteUntil,
        secret.id,
        secret.trigger,
        secret.claimed,
        secret.keyId,
        secret.ciphertext,
        secret.fingerprint,
        now,
        audit.id,
        audit.projectId,
        audit.type,
        audit.occurredAt,
        JSON.stringify(audit.event),
      ],
    );
  }

  async findCurrent(webhookId: string): Promise<WebhookSecretEntity | null> {
    return this.repo.findOneBy({ webhookId, state: 'current' });
  }

  /** The current secret and the previous ones still valid at `now`, newest first: the signing set. */
  async findValid(webhookId: string, now: Date): Promise<WebhookSecretEntity[]> {
    return this.repo
      .createQueryBuilder('s')
      .where("s.webhook_id = :webhookId AND (s.state = 'current' OR s.expires_at > :now)", { webhookId, now })
      .orderBy('s.created_at', 'DESC')
      .addOrderBy('s.id', 'DESC')
      .getMany();
  }

  /** Destroys every secret of a webhook; returns how many there were. */
  async deleteAllOfWebhook(webhookId: string): Promise<number> {
    const res = await this.repo.delete({ webhookId });
    return res.affected ?? 0;
  }

  /** Destroys the previous secrets of a webhook (ends the grace period now); returns the destroyed rows. */
  async deletePreviousOfWebhook(webhookId: string): Promise<WebhookSecretEntity[]> {
    const rows: WebhookSecretEntity[] = await this.repo
      .createQueryBuilder()
      .delete()
      .where("webhook_id = :webhookId AND state = 'previous'", { webhookId })
      .returning('*')
      .execute()
      .then((r) => (r.raw as Record<string, unknown>[]).map(fromRaw));
    return rows;
  }

  /** Destroys up to `limit` previous secrets whose grace period ended at or before `now`; returns them. */
  async deleteExpired(now: Date, limit: number): Promise<WebhookSecretEntity[]> {
    const result: unknown = await this.manager.query(
      `DELETE FROM webhook_secrets WHERE id IN (
         SELECT id FROM webhook_secrets WHERE state = 'previous' AND expires_at <= $1
         ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [now, limit],
    );
    return returnedRows(result).map(fromRaw);
  }

  /** A page of secrets in id order, for re-encryption under a new key. */
  async pageAfter(afterId: string | null, limit: number): Promise<WebhookSecretEntity[]> {
    const qb = this.repo.createQueryBuilder('s').orderBy('s.id', 'ASC').limit(limit);
    if (afterId) qb.where('s.id > :afterId', { afterId });
    return qb.getMany();
  }

  async replaceCiphertext(id: string, keyId: string, ciphertext: Buffer): Promise<void> {
    await this.repo.update({ id }, { keyId, ciphertext });
  }

  /** {@link findValid} for several webhooks in one round trip (the delivery dispatcher signs in batches). */
  async findValidOf(webhookIds: string[], now: Date): Promise<WebhookSecretEntity[]> {
    if (webhookIds.length === 0) return [];
    return this.repo
      .createQueryBuilder('s')
      .where("s.webhook_id IN (:...webhookIds) AND (s.state = 'current' OR s.expires_at > :now)", {
        webhookIds,
        now,
      })
      .orderBy('s.created_at', 'DESC')
      .addOrderBy('s.id', 'DESC')
      .getMany();
  }
}

/**
 * The rows of a `RETURNING` statement run through `EntityManager.query`: TypeORM answers UPDATE and DELETE
 * with `[rows, affectedCount]` but INSERT and SELECT with the rows alone.
 */
export function returnedRows(result: unknown): Record<string, unknown>[] {
  if (
    Array.isArray(result) &&
    result.length === 2 &&
    Array.isArray(result[0]) &&
    typeof result[1] === 'number'
  ) {
    return result[0] as Record<string, unknown>[];
  }
  return result as Record<string, unknown>[];
}

function fromRaw(r: Record<string, unknown>): WebhookSecretEntity {
  const e = new WebhookSecretEntity();
  e.id = r.id as string;
  e.webhookId = r.webhook_id as string;
  e.state = r.state as WebhookSecretEntity['state'];
  e.trigger = r.trigger as WebhookSecretEntity['trigger'];
  e.claimed = r.claimed as boolean;
  e.keyId = r.key_id as string;
  e.ciphertext = r.ciphertext as Buffer;
  e.fingerprint = r.fingerprint as string;
  e.createdAt = new Date(r.created_at as string);
  e.expiresAt = r.expires_at == null ? null : new Date(r.expires_at as string);
  return e;
}
