import type { EntityManager } from 'typeorm';
import { RotationPolicyEntity } from '../entities/rotation-policy.entity';

/** Which policy a webhook's schedule follows. */
export type PolicyScope = 'webhook' | 'project';

/** The effective rotation schedule of one webhook (a row of `rotation_schedules`). */
export interface RotationSchedule {
  webhookId: string;
  projectId: string;
  scope: PolicyScope;
  intervalDays: number;
  gracePeriodHours: number;
  /** When the clock last (re)started: the last rotation, the webhook's or the policy's creation. */
  anchorAt: Date;
  nextRotationAt: Date;
}

/** A due schedule claimed by a sweep batch; its webhook and schedule rows stay locked until commit. */
export interface DueRotation {
  webhookId: string;
  projectId: string;
  /** Whose policy the webhook follows. */
  scope: PolicyScope;
  gracePeriodHours: number;
  dueAt: Date;
  /** Whether the advance notice of this due time has gone out. */
  announced: boolean;
  /** The webhook's `updated_at` and `last_change_at`, read under its row lock: the rotation is dated after them. */
  updatedAt: Date;
  lastChangeAt: Date | null;
}

/**
 * Previous secrets a webhook keeps in their grace period, at most: a rotation that keeps one more destroys the
 * oldest (the same bound as `rotate_webhook_secret(…)` of migration 1765200000000). Without it, a client
 * rotating in a loop with a long grace period made every delivery carry one signature per secret, a header
 * receivers refuse, and cost the shared worker a decryption and an HMAC for each. A daily scheduled rotation
 * with the longest grace period (168 h) keeps seven.
 */
export const MAX_PREVIOUS_SECRETS = 10;

/** A previous secret destroyed before its time because its webhook kept more than {@link MAX_PREVIOUS_SECRETS}. */
export interface DroppedSecret {
  webhookId: string;
  fingerprint: string;
}

/** What became of a webhook's current secret when a sweep batch replaced it. */
export interface OutgoingSecret {
  webhookId: string;
  fingerprint: string;
  claimed: boolean;
  /** Null when the row was destroyed (unclaimed, or a zero grace period). */
  expiresAt: Date | null;
}

/** A new scheduled secret, sealed, for a set-based insert. */
export interface NewScheduledSecret {
  id: string;
  webhookId: string;
  keyId: string;
  ciphertext: Buffer;
  fingerprint: string;
  /** The rotation's time, as the secret's `created_at` and the webhook's new `updated_at`. */
  createdAt: Date;
}

/** A webhook whose schedule follows the project default, with the time its current secret was issued. */
export interface GovernedWebhook {
  webhookId: string;
  secretIssuedAt: Date;
}

const HOUR = `interval '1 hour'`;

/**
 * The rows of a statement's RETURNING clause. TypeORM answers UPDATE and DELETE with `[rows, rowCount]` and
 * every other command with the rows alone.
 */
async function returned<T>(result: Promise<unknown>): Promise<T[]> {
  const r = await result;
  if (Array.isArray(r) && r.length === 2 && Array.isArray(r[0]) && typeof r[1] === 'number')
    return r[0] as T[];
  return r as T[];
}

/**
 * Rotation policies, the denormalised per-webhook schedule, and the set-based statements of a sweep batch
 * (one round trip per statement for the whole batch, never one per webhook).
 */
export class RotationRepository {
  constructor(private readonly manager: EntityManager) {}

  private get policies() {
    return this.manager.getRepository(RotationPolicyEntity);
  }

  // ---- policies ---------------------------------------------------------------------------------------

  /** The webhook's own policy, or the project default when `webhookId` is null. */
  async findPolicy(projectId: string, webhookId: string | null): Promise<RotationPolicyEntity | null> {
    const qb = this.policies.createQueryBuilder('p').where('p.project_id = :projectId', { projectId });
    if (webhookId === null) qb.andWhere('p.webhook_id IS NULL');
    else qb.andWhere('p.webhook_id = :webhookId', { webhookId });
    return qb.getOne();
  }

  /** Creates or replaces a policy; an existing one keeps its id and `created_at`. Returns the stored row. */
  async upsertPolicy(p: RotationPolicyEntity): Promise<RotationPolicyEntity> {
    const target =
      p.webhookId === null
        ? '(project_id) WHERE webhook_id IS NULL'
        : '(webhook_id) WHERE webhook_id IS NOT NULL';
    const rows: Record<string, unknown>[] = await this.manager.query(
      `INSERT INTO rotation_policies (id, project_id, webhook_id, interval_days, grace_period_hours, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6)
       ON CONFLICT ${target} DO UPDATE SET interval_days = EXCLUDED.interval_days,
         grace_period_hours = EXCLUDED.grace_period_hours, updated_at = EXCLUDED.updated_at
       RETURNING *`,
      [p.id, p.projectId, p.webhookId, p.intervalDays, p.gracePeriodHours, p.createdAt],
    );
    return policyFromRaw(rows[0]);
  }

  /** Deletes a policy; returns whether there was one. */
  async deletePolicy(projectId: string, webhookId: string | null): Promise<boolean> {
    const rows = await returned<unknown>(
      this.manager.query(
        `DELETE FROM rotation_policies WHERE project_id = $1 AND webhook_id IS NOT DISTINCT FROM $2 RETURNING id`,
        [projectId, webhookId],
      ),
    );
    return rows.length > 0;
  }

  // ---- schedules --------------------------------------------------------------------------------------

  async findSchedule(webhookId: string): Promise<RotationSchedule | null> {
    const rows: Record<string, unknown>[] = await this.manager.query(
      `SELECT * FROM rotation_schedules WHERE webhook_id = $1`,
      [webhookId],
    );
    return rows.length ? scheduleFromRaw(rows[0]) : null;
  }

  /**
   * Writes schedules. The advance notice already sent stays recorded only when the due time is unchanged:
   * a new due time deserves its own notice.
   */
  async upsertSchedules(rows: RotationSchedule[]): Promise<void> {
    if (rows.length === 0) return;
    await this.manager.query(
      `INSERT INTO rotation_schedules
         (webhook_id, project_id, scope, interval_days, grace_period_hours, anchor_at, next_rotation_at)
       SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int[], $5::int[], $6::timestamptz[], $7::timestamptz[])
       ON CONFLICT (webhook_id) DO UPDATE SET scope = EXCLUDED.scope, interval_days = EXCLUDED.interval_days,
         grace_period_hours = EXCLUDED.grace_period_hours, anchor_at = EXCLUDED.anchor_at,
         next_rotation_at = EXCLUDED.next_rotation_at,
         notice_sent_for = CASE WHEN rotation_schedules.next_rotation_at = EXCLUDED.next_rotation_at
                                THEN rotation_schedules.notice_sent_for END`,
      [
        rows.map((r) => r.webhookId),
        rows.map((r) => r.projectId),
        rows.map((r) => r.scope),
        rows.map((r) => r.intervalDays),
        rows.map((r) => r.gracePeriodHours),
        rows.map((r) => r.anchorAt),
        rows.map((r) => r.nextRotationAt),
      ],
    );
  }

  /** Stops scheduled rotations of a webhook (no policy applies any more, or it is deleted). */
  async deleteSchedule(webhookId: string): Promise<void> {
    await this.manager.query(`DELETE FROM rotation_schedules WHERE webhook_id = $1`, [webhookId]);
  }

  /** Stops the schedules that followed the project default. Call after {@link lockLiveWebhooks}. */
  async deleteProjectDefaultSchedules(projectId: string): Promise<void> {
    await this.manager.query(
      `DELETE FROM rotation_schedules WHERE scope = 'project' AND webhook_id IN (
         SELECT id FROM webhooks WHERE project_id = $1 AND deleted_at IS NULL)`,
      [projectId],
    );
  }

  /**
   * Row-locks every live webhook of a project, in id order (so concurrent callers cannot deadlock), for a change of
   * the project default policy. Every change that decides a webhook's schedule (its own policy set or removed, a
   * rotation, a delete) holds that webhook's row lock, so the statements that follow these locks, each reading in
   * a snapshot of its own, see every such change committed. One statement cannot do both: a row lock waited for
   * re-reads only the locked row, while its joins and subqueries keep the snapshot taken before the wait.
   */
  async lockLiveWebhooks(projectId: string): Promise<void> {
    await this.manager.query(
      `SELECT count(*) FROM (
         SELECT 1 FROM webhooks WHERE project_id = $1 AND deleted_at IS NULL ORDER BY id FOR UPDATE) locked`,
      [projectId],
    );
  }

  /**
   * The live webhooks of a project that have no policy of their own, with the time their current secret was
   * issued. Call after {@link lockLiveWebhooks} in the same transaction.
   */
  async webhooksFollowingDefault(projectId: string): Promise<GovernedWebhook[]> {
    const rows: { id: string; issued_at: Date }[] = await this.manager.query(
      `SELECT w.id, s.created_at AS issued_at
       FROM webhooks w JOIN webhook_secrets s ON s.webhook_id = w.id AND s.state = 'current'
       WHERE w.project_id = $1 AND w.deleted_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM rotation_policies p WHERE p.webhook_id = w.id)
       ORDER BY w.id`,
      [projectId],
    );
    return rows.map((r) => ({ webhookId: r.id, secretIssuedAt: new Date(r.issued_at) }));
  }

  /** For the project default: the earliest upcoming and the latest past rotation of the webhooks following it. */
  async projectDefaultSummary(
    projectId: string,
  ): Promise<{ nextRotationAt: Date | null; lastRotatedAt: Date | null }> {
    const rows: { next: Date | null; last: Date | null }[] = await this.manager.query(
      `SELECT min(rs.next_rotation_at) AS next,
              max(s.created_at) FILTER (WHERE s.trigger <> 'created') AS last
       FROM rotation_schedules rs
       LEFT JOIN webhook_secrets s ON s.webhook_id = rs.webhook_id AND s.state = 'current'
       WHERE rs.scope = 'project' AND rs.webhook_id IN (
         SELECT id FROM webhooks WHERE project_id = $1 AND deleted_at IS NULL)`,
      [projectId],
    );
    const r = rows[0];
    return {
      nextRotationAt: r?.next ? new Date(r.next) : null,
      lastRotatedAt: r?.last ? new Date(r.last) : null,
    };
  }

  // ---- secrets of one webhook -------------------------------------------------------------------------

  /** Marks a webhook's unclaimed current secret as claimed; returns whether one was waiting. */
  async markCurrentClaimed(secretId: string): Promise<boolean> {
    const rows = await returned<unknown>(
      this.manager.query(
        `UPDATE webhook_secrets SET claimed = true WHERE id = $1 AND state = 'current' AND NOT claimed RETURNING id`,
        [secretId],
      ),
    );
    return rows.length > 0;
  }

  /**
   * Destroys the previous secrets of a webhook that still sign at `now` (ends their grace period now) and
   * returns their fingerprints, newest first as secret-status lists them (a DELETE alone returns its rows in no
   * set order). Already expired ones are left to housekeeping, which records their expiry.
   */
  async destroyValidPrevious(webhookId: string, now: Date): Promise<string[]> {
    const rows = await returned<{ fingerprint: string }>(
      this.manager.query(
        `WITH revoked AS (
           DELETE FROM webhook_secrets WHERE webhook_id = $1 AND state = 'previous' AND expires_at > $2
           RETURNING fingerprint, seq, created_at, id)
         SELECT fingerprint FROM revoked ORDER BY seq DESC NULLS LAST, created_at DESC, id DESC`,
        [webhookId, now],
      ),
    );
    return rows.map((r) => r.fingerprint);
  }

  // ---- sweep batch ------------------------------------------------------------------------------------

  /**
   * Claims up to `limit` schedules due at `now`, locking each schedule and its live webhook until the
   * transaction ends. SKIP LOCKED: concurrent sweeps take disjoint batches and never wait on each other,
   * and a webhook being rotated by hand right now is left for the next sweep. `only` narrows the claim to
   * one webhook and one due time (an idempotent single rotation).
   */
  async claimDue(
    now: Date,
    limit: number,
    only?: { webhookId: string; dueAt: Date },
  ): Promise<DueRotation[]> {
    const params: unknown[] = [now, limit];
    let filter = '';
    if (only) {
      params.push(only.webhookId, only.dueAt);
      filter = 'AND rs.webhook_id = $3 AND rs.next_rotation_at = $4';
    }
    const rows: Record<string, unknown>[] = await this.manager.query(
      `SELECT rs.webhook_id, rs.project_id, rs.scope, rs.grace_period_hours, rs.next_rotation_at,
              rs.notice_sent_for IS NOT DISTINCT FROM rs.next_rotation_at AS announced, w.updated_at, w.last_change_at
       FROM rotation_schedules rs JOIN webhooks w ON w.id = rs.webhook_id AND w.deleted_at IS NULL
       WHERE rs.next_rotation_at <= $1 ${filter}
       ORDER BY rs.next_rotation_at
       LIMIT $2
       FOR UPDATE OF rs, w SKIP LOCKED`,
      params,
    );
    return rows.map((r) => ({
      webhookId: r.webhook_id as string,
      projectId: r.project_id as string,
      scope: r.scope as PolicyScope,
      gracePeriodHours: r.grace_period_hours as number,
      dueAt: new Date(r.next_rotation_at as string),
      announced: r.announced as boolean,
      updatedAt: new Date(r.updated_at as string),
      lastChangeAt: r.last_change_at == null ? null : new Date(r.last_change_at as string),
    }));
  }

  /**
   * Retires the current secret of each webhook: an unclaimed one (nobody can hold it) and one with a zero
   * grace period are destroyed, a claimed one becomes previous and signs until `now` + its grace period.
   */
  async retireCurrent(
    webhookIds: string[],
    gracePeriodHours: number[],
    now: Date,
  ): Promise<OutgoingSecret[]> {
    // One round trip: both statements see the same snapshot, and a row matches exactly one of them.
    const rows: { webhook_id: string; fingerprint: string; claimed: boolean; expires_at: Date | null }[] =
      await this.manager.query(
        `WITH g AS (SELECT * FROM unnest($1::text[], $2::int[]) AS g(webhook_id, grace)),
         destroyed AS (
           DELETE FROM webhook_secrets s USING g
           WHERE s.webhook_id = g.webhook_id AND s.state = 'current' AND (NOT s.claimed OR g.grace = 0)
           RETURNING s.webhook_id, s.fingerprint, s.claimed, NULL::timestamptz AS expires_at),
         demoted AS (
           UPDATE webhook_secrets s SET state = 'previous', expires_at = $3::timestamptz + g.grace * ${HOUR}
           FROM g
           WHERE s.webhook_id = g.webhook_id AND s.state = 'current' AND s.claimed AND g.grace > 0
           RETURNING s.webhook_id, s.fingerprint, true AS claimed, s.expires_at)
         SELECT * FROM destroyed UNION ALL SELECT * FROM demoted`,
        [webhookIds, gracePeriodHours, now],
      );
    return rows.map((r) => ({
      webhookId: r.webhook_id,
      fingerprint: r.fingerprint,
      claimed: r.claimed,
      expiresAt: r.expires_at === null ? null : new Date(r.expires_at),
    }));
  }

  /**
   * Destroys, of each webhook, the oldest previous secrets still in their grace period at `now` beyond the newest
   * {@link MAX_PREVIOUS_SECRETS}; returns them, oldest first. Oldest by the order they were issued (and so
   * replaced) in, `seq` (NULL before migration 1765600000000), not by `created_at`, which a clock running ahead
   * can date after the secrets that replaced it. Run after {@link retireCurrent}, under the row locks of the batch.
   */
  async dropPreviousBeyondBound(webhookIds: string[], now: Date): Promise<DroppedSecret[]> {
    const rows: { webhook_id: string; fingerprint: string }[] = await this.manager.query(
      `WITH ranked AS (
         SELECT id, row_number() OVER (PARTITION BY webhook_id ORDER BY seq DESC NULLS LAST, created_at DESC, id DESC) AS newer
         FROM webhook_secrets
         WHERE webhook_id = ANY($1::text[]) AND state = 'previous' AND expires_at > $2::timestamptz),
       dropped AS (
         DELETE FROM webhook_secrets s USING ranked r
         WHERE s.id = r.id AND r.newer > $3
         RETURNING s.webhook_id, s.fingerprint, s.seq, s.created_at, s.id)
       SELECT webhook_id, fingerprint FROM dropped ORDER BY seq NULLS FIRST, created_at, id`,
      [webhookIds, now, MAX_PREVIOUS_SECRETS],
    );
    return rows.map((r) => ({ webhookId: r.webhook_id, fingerprint: r.fingerprint }));
  }

  /** Inserts the new current secrets of a batch: made by the scheduler, unclaimed until the project fetches them. */
  async insertScheduledSecrets(rows: NewScheduledSecret[]): Promise<void> {
    await this.manager.query(
      `INSERT INTO webhook_secrets (id, webhook_id, state, trigger, claimed, key_id, ciphertext, fingerprint, created_at)
       SELECT id, webhook_id, 'current', 'scheduled', false, key_id, ciphertext, fingerprint, created_at
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::timestamptz[])
         AS n(id, webhook_id, key_id, ciphertext, fingerprint, created_at)`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.webhookId),
        rows.map((r) => r.keyId),
        rows.map((r) => r.ciphertext),
        rows.map((r) => r.fingerprint),
        rows.map((r) => r.createdAt),
      ],
    );
  }

  /**
   * Restarts the clocks of rotated webhooks from `now` and sets their `updated_at` to the time each rotation is
   * dated (`changedAt`, in the order of `webhookIds`), like a manual rotation does.
   */
  async completeRotations(webhookIds: string[], changedAt: Date[], now: Date): Promise<void> {
    await this.manager.query(
      `WITH schedules AS (
         UPDATE rotation_schedules SET anchor_at = $3::timestamptz,
           next_rotation_at = $3::timestamptz + interval_days * 24 * ${HOUR}, notice_sent_for = NULL
         WHERE webhook_id = ANY($1::text[]))
       UPDATE webhooks w SET updated_at = c.changed_at
       FROM unnest($1::text[], $2::timestamptz[]) AS c(id, changed_at)
       WHERE w.id = c.id`,
      [webhookIds, changedAt, now],
    );
  }

  // ---- advance notices --------------------------------------------------------------------------------

  /**
   * Claims up to `limit` schedules due by `horizon` whose advance notice has not gone out, and marks it sent
   * for their current due time, in the caller's transaction. Returns the claimed schedules.
   */
  async claimNotices(horizon: Date, limit: number): Promise<RotationSchedule[]> {
    const rows = await returned<Record<string, unknown>>(
      this.manager.query(
        `UPDATE rotation_schedules rs SET notice_sent_for = rs.next_rotation_at
       FROM (SELECT webhook_id FROM rotation_schedules
             WHERE notice_sent_for IS NULL AND next_rotation_at <= $1
             ORDER BY next_rotation_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
       WHERE rs.webhook_id = due.webhook_id
       RETURNING rs.*`,
        [horizon, limit],
      ),
    );
    return rows.map(scheduleFromRaw);
  }
}

function policyFromRaw(r: Record<string, unknown>): RotationPolicyEntity {
  const p = new RotationPolicyEntity();
  p.id = r.id as string;
  p.projectId = r.project_id as string;
  p.webhookId = (r.webhook_id as string | null) ?? null;
  p.intervalDays = r.interval_days as number;
  p.gracePeriodHours = r.grace_period_hours as number;
  p.createdAt = new Date(r.created_at as string);
  p.updatedAt = new Date(r.updated_at as string);
  return p;
}

function scheduleFromRaw(r: Record<string, unknown>): RotationSchedule {
  return {
    webhookId: r.webhook_id as string,
    projectId: r.project_id as string,
    scope: r.scope as PolicyScope,
    intervalDays: r.interval_days as number,
    gracePeriodHours: r.grace_period_hours as number,
    anchorAt: new Date(r.anchor_at as string),
    nextRotationAt: new Date(r.next_rotation_at as string),
  };
}
