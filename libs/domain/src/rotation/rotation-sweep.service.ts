import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { AuditRecorder, type Actor, type AuditInput } from '@app/audit';
import { Database, type NewScheduledSecret } from '@app/persistence';
import { Clock } from '../clock';
import { newUuid } from '../ids';
import { SecretCipher } from '../secrets/secret.cipher';
import { fingerprint, generateSecret } from '../secrets/secret-material';
import { timeOfChange } from '../webhooks/time-of-change';
import { noticeHorizon } from './rotation-schedule';

/** Rotations per transaction: large enough to amortise round trips, small enough to keep memory and locks short. */
export const SWEEP_BATCH = 1000;
/**
 * Batch transactions a sweep runs side by side. Two keep both a Postgres backend and this process busy
 * (one batch is being written while the next is being prepared); SKIP LOCKED keeps their batches disjoint.
 */
export const SWEEP_LANES = 2;
/** Advance notices per transaction. */
const NOTICE_BATCH = 1000;

/** The actor of every scheduled rotation and notice. */
const SCHEDULER: Actor = { type: 'scheduler', id: 'rotation.sweep' };

/** What one sweep did. */
export interface SweepResult {
  rotated: number;
  notices: number;
  batches: number;
}

/**
 * Scheduled rotation. A batch claims due schedules with FOR UPDATE SKIP LOCKED, replaces their secrets,
 * records one `webhook.secret.rotated` each and advances their schedules, all in one transaction and with
 * one statement per step for the whole batch. A due rotation is therefore done exactly once whatever the
 * number of concurrent sweeps: a committed batch has moved its schedules past `now`, a crashed one rolled
 * back entirely and its rows are due again for the next sweep.
 */
@Injectable()
export class RotationSweepService {
  constructor(
    private readonly db: Database,
    private readonly cipher: SecretCipher,
    private readonly audit: AuditRecorder,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Sends the advance notices that are due, then rotates batch after batch until nothing is due. Memory is
   * bounded by {@link SWEEP_LANES} batches, whatever the backlog. Once `stopping` answers true (the worker is
   * shutting down) no further batch starts: the batches in flight commit, and what is still due waits for the
   * next sweep, so a backlog of any size does not hold a shutdown past its deadline.
   */
  async sweep(batchSize = SWEEP_BATCH, stopping: () => boolean = () => false): Promise<SweepResult> {
    let notices = await this.sendNotices(stopping);
    let rotated = 0;
    let batches = 0;
    let failed = false;
    const lane = async (): Promise<void> => {
      while (!failed && !stopping()) {
        try {
          const done = await this.rotateBatch(this.clock.now(), batchSize);
          if (done.rotated === 0) return;
          rotated += done.rotated;
          notices += done.notices; // due times announced right before their rotation
          batches++;
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    };
    // A failing lane stops the others after their current batch; the sweep then fails as a whole, and the
    // rolled-back batch is due again for the next sweep.
    const outcomes = await Promise.allSettled(Array.from({ length: SWEEP_LANES }, lane));
    const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (rejected) throw rejected.reason;
    return { rotated, notices, batches };
  }

  /**
   * Rotates one webhook if its rotation due at `dueAt` is still pending (a `secret.rotate` job). Idempotent:
   * a retry, or a job for a rotation a sweep already did, finds nothing to do.
   */
  async rotateIfDue(webhookId: string, dueAt: Date): Promise<boolean> {
    return (await this.rotateBatch(this.clock.now(), 1, { webhookId, dueAt })).rotated === 1;
  }

  /**
   * Emits `webhook.secret.rotation_due` once per due rotation, ROTATION_NOTICE_HOURS ahead (or at once when
   * a rotation is already closer than that). The schedule records which due time was announced.
   */
  async sendNotices(stopping: () => boolean = () => false): Promise<number> {
    let total = 0;
    while (!stopping()) {
      const now = this.clock.now();
      const horizon = noticeHorizon(now, this.config.rotation.noticeHours);
      const n = await this.db.transaction(async (tx) => {
        const due = await tx.rotation.claimNotices(horizon, NOTICE_BATCH);
        await this.audit.recordMany(
          tx,
          due.map((s): AuditInput<'webhook.secret.rotation_due'> => ({
            type: 'webhook.secret.rotation_due',
            projectId: s.projectId,
            webhookId: s.webhookId,
            actor: SCHEDULER,
            requestId: null,
            occurredAt: now,
            data: { due_at: s.nextRotationAt.toISOString(), policy: s.scope },
          })),
        );
        return due.length;
      });
      total += n;
      if (n < NOTICE_BATCH) break;
    }
    return total;
  }

  /**
   * One transaction: claim up to `limit` due schedules and rotate them all. Returns how many, and how many of
   * them got their `rotation_due` notice in the batch (their due time not announced before).
   */
  private async rotateBatch(
    now: Date,
    limit: number,
    only?: { webhookId: string; dueAt: Date },
  ): Promise<{ rotated: number; notices: number }> {
    return this.db.transaction(async (tx) => {
      const due = await tx.rotation.claimDue(now, limit, only);
      if (due.length === 0) return { rotated: 0, notices: 0 };
      const ids = due.map((d) => d.webhookId);
      // Each rotation is dated after its webhook's last change (read under the row lock claimDue took), as the
      // API dates its changes; durations (grace periods, the next rotation) run from `now`.
      const changedAt = due.map((d) => timeOfChange(now, d));
      const outgoing = await tx.rotation.retireCurrent(
        ids,
        due.map((d) => d.gracePeriodHours),
        now,
      );
      const outgoingOf = new Map(outgoing.map((o) => [o.webhookId, o]));
      // A kept outgoing secret may make one more previous secret than a webhook keeps: the oldest go now.
      const dropped = await tx.rotation.dropPreviousBeyondBound(
        outgoing.filter((o) => o.expiresAt !== null).map((o) => o.webhookId),
        now,
      );
      const fresh: NewScheduledSecret[] = due.map((d, i) => {
        const secret = generateSecret();
        const sealed = this.cipher.seal(secret, d.webhookId);
        return {
          id: newUuid(),
          webhookId: d.webhookId,
          keyId: sealed.keyId,
          ciphertext: sealed.ciphertext,
          fingerprint: fingerprint(secret),
          createdAt: changedAt[i],
        };
      });
      await tx.rotation.insertScheduledSecrets(fresh);
      await tx.rotation.completeRotations(ids, changedAt, now);
      type Recorded =
        'webhook.secret.rotation_due' | 'webhook.secret.rotated' | 'webhook.secret.previous_expired';
      await this.audit.recordMany(
        tx,
        due.flatMap((d, i): AuditInput<Recorded>[] => {
          const out = outgoingOf.get(d.webhookId);
          const kept = out?.claimed === true;
          const rotated: AuditInput<Recorded> = {
            type: 'webhook.secret.rotated',
            projectId: d.projectId,
            webhookId: d.webhookId,
            actor: SCHEDULER,
            requestId: null,
            occurredAt: changedAt[i],
            data: {
              trigger: 'scheduled',
              fingerprint: fresh[i].fingerprint,
              previous_fingerprint: kept ? out.fingerprint : null,
              // A zero grace period destroys the outgoing secret at once: it expired at the rotation.
              previous_expires_at: kept ? (out.expiresAt ?? now).toISOString() : null,
              ...(out && !out.claimed ? { superseded_unclaimed_fingerprint: out.fingerprint } : {}),
              due_at: d.dueAt.toISOString(),
            },
          };
          // Destroyed at once (no grace period, or beyond the previous secrets a webhook keeps): recorded as
          // expired at the rotation, as a manual one does.
          const expiredNow = (fp: string): AuditInput<Recorded> => ({
            ...rotated,
            type: 'webhook.secret.previous_expired',
            data: { fingerprint: fp, expired_at: now.toISOString() },
          });
          // A due time no sweep announced yet (a `secret.rotate` job that came first, a notice lead time of 0 that
          // a sweep's clock read missed) gets its notice now, right before its rotation: one per due time.
          const notice: AuditInput<Recorded>[] = d.announced
            ? []
            : [
                {
                  ...rotated,
                  type: 'webhook.secret.rotation_due',
                  data: { due_at: d.dueAt.toISOString(), policy: d.scope },
                },
              ];
          if (kept && out.expiresAt === null) return [...notice, rotated, expiredNow(out.fingerprint)];
          return [
            ...notice,
            rotated,
            ...dropped.filter((s) => s.webhookId === d.webhookId).map((s) => expiredNow(s.fingerprint)),
          ];
        }),
      );
      return { rotated: due.length, notices: due.filter((d) => !d.announced).length };
    });
  }
}
