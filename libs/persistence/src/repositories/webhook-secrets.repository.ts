import type { EntityManager } from 'typeorm';
import { WebhookSecretEntity } from '../entities/webhook-secret.entity';

/** A new current secret, encrypted. */
export type NewSecretRow = Pick<
  WebhookSecretEntity,
  'id' | 'trigger' | 'claimed' | 'keyId' | 'ciphertext' | 'fingerprint'
>;

/** Sorts the current secret before the previous ones (`false` sorts before `true`). */
const CURRENT_FIRST = "s.state <> 'current'";

/** Encrypted signing secrets of webhooks. */
export class WebhookSecretsRepository {
  constructor(private readonly manager: EntityManager) {}

  private get repo() {
    return this.manager.getRepository(WebhookSecretEntity);
  }

  async findCurrent(webhookId: string): Promise<WebhookSecretEntity | null> {
    return this.repo.findOneBy({ webhookId, state: 'current' });
  }

  /**
   * The current secret and the previous ones still valid at `now`, newest first: the signing set. Newest by the
   * order they were issued in (`seq`; secrets from before it have none, and are older), not by their time: a
   * change dated by a process whose clock runs ahead (see `timeOfChange`) can leave the secret it replaced dated
   * after it.
   */
  async findValid(webhookId: string, now: Date): Promise<WebhookSecretEntity[]> {
    return this.repo
      .createQueryBuilder('s')
      .where("s.webhook_id = :webhookId AND (s.state = 'current' OR s.expires_at > :now)", { webhookId, now })
      .orderBy(CURRENT_FIRST, 'ASC')
      .addOrderBy('s.seq', 'DESC', 'NULLS LAST')
      .addOrderBy('s.created_at', 'DESC')
      .addOrderBy('s.id', 'DESC')
      .getMany();
  }

  /** Destroys every secret of a webhook; returns how many there were. */
  async deleteAllOfWebhook(webhookId: string): Promise<number> {
    const res = await this.repo.delete({ webhookId });
    return res.affected ?? 0;
  }

  /**
   * Destroys up to `limit` previous secrets whose grace period ended at or before `now`; returns them in the order
   * they expired (then replaced, as `seq` tells), which is the order their expiries are recorded in. A DELETE
   * returns its rows in no particular order (the planner hashes the ids of the subquery).
   */
  async deleteExpired(now: Date, limit: number): Promise<WebhookSecretEntity[]> {
    const result: unknown = await this.manager.query(
      `WITH expired AS (
         DELETE FROM webhook_secrets WHERE id IN (
           SELECT id FROM webhook_secrets WHERE state = 'previous' AND expires_at <= $1
           ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING *)
       SELECT * FROM expired ORDER BY expires_at, seq NULLS FIRST, created_at, id`,
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

  /**
   * Replaces a secret's ciphertext with its re-encryption, unless it is gone or no longer under `previousKeyId`
   * (destroyed or re-encrypted since it was read). Returns whether it was replaced.
   */
  async replaceCiphertext(
    id: string,
    previousKeyId: string,
    keyId: string,
    ciphertext: Buffer,
  ): Promise<boolean> {
    const res = await this.repo.update({ id, keyId: previousKeyId }, { keyId, ciphertext });
    return res.affected === 1;
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
      .orderBy(CURRENT_FIRST, 'ASC')
      .addOrderBy('s.seq', 'DESC', 'NULLS LAST')
      .addOrderBy('s.created_at', 'DESC')
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
