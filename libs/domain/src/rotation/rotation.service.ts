import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { AuditRecorder } from '@app/audit';
import {
  Database,
  RotationPolicyEntity,
  type PolicyScope,
  type Repositories,
  type RotationSchedule,
  type SecretTrigger,
  type WebhookEntity,
} from '@app/persistence';
import { Clock } from '../clock';
import type { CommitWith } from '../commit-with';
import { timeOfChange } from '../webhooks/time-of-change';
import { NoUnclaimedSecretError, NotFoundError, WebhookNotFoundError } from '../errors';
import { newUuid } from '../ids';
import type { RequestContext } from '../request-context';
import { SecretCipher } from '../secrets/secret.cipher';
import type { WebhookWithSecret } from '../webhooks/webhooks.service';
import { nextRotationAt, rotationAnchor } from './rotation-schedule';

/** Input of a policy PUT, already validated. */
export interface SetRotationPolicyInput {
  intervalDays: number;
  /** Defaults to SECRET_GRACE_PERIOD_HOURS. */
  gracePeriodHours?: number;
}

/** A policy with the state of the rotations it drives. */
export interface RotationPolicyView {
  policy: RotationPolicyEntity;
  /**
   * For a webhook: its next rotation. For the project default: the earliest among the webhooks following it, or,
   * while none does, when a webhook created now would first rotate.
   */
  nextRotationAt: Date;
  /** The last rotation (manual or scheduled): of the webhook, or the latest among those following the default. */
  lastRotatedAt: Date | null;
}

/** The secrets of a webhook as `secret-status` shows them: fingerprints and dates, never material. */
export interface SecretStatusView {
  current: { createdAt: Date; fingerprint: string; trigger: SecretTrigger; claimed: boolean };
  previous: { createdAt: Date; expiresAt: Date; fingerprint: string }[];
  nextRotationAt: Date | null;
}

const scopeOf = (webhookId: string | null): PolicyScope => (webhookId === null ? 'project' : 'webhook');

/**
 * Rotation policies (a webhook's own, or the project default) and the secret lifecycle around scheduled
 * rotation: claim the unclaimed secret, inspect the secrets, end the grace period early. Every change
 * commits with its audit event and keeps the webhook's denormalised schedule in step.
 */
@Injectable()
export class RotationService {
  constructor(
    private readonly db: Database,
    private readonly cipher: SecretCipher,
    private readonly audit: AuditRecorder,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The webhook's own policy (`webhookId`), or the project default (`null`); not_found when there is none. */
  async getPolicy(ctx: RequestContext, webhookId: string | null): Promise<RotationPolicyView> {
    return this.db.transaction(async (tx) => {
      if (webhookId !== null) await this.liveWebhook(tx, ctx, webhookId, false);
      const policy = await tx.rotation.findPolicy(ctx.projectId, webhookId);
      if (!policy) throw policyNotFound(webhookId);
      return this.view(tx, policy);
    });
  }

  /** Creates or replaces a policy and reschedules the webhooks it governs. */
  async setPolicy(
    ctx: RequestContext,
    webhookId: string | null,
    input: SetRotationPolicyInput,
  ): Promise<RotationPolicyView> {
    return this.db.transaction(async (tx) => {
      // A project default must reach every webhook, including one being created right now: creates of the
      // project wait on this lock; one that got it first is visible to the next statements, one that comes
      // after reads the default recorded below.
      if (webhookId === null) await tx.webhooks.lockProjectCreates(ctx.projectId);
      const { now, occurredAt } = await this.policyChangeTime(tx, ctx, webhookId);
      const draft = new RotationPolicyEntity();
      draft.id = newUuid();
      draft.projectId = ctx.projectId;
      draft.webhookId = webhookId;
      draft.intervalDays = input.intervalDays;
      draft.gracePeriodHours = input.gracePeriodHours ?? this.config.secrets.gracePeriodHours;
      draft.createdAt = now;
      draft.updatedAt = now;
      const policy = await tx.rotation.upsertPolicy(draft);
      if (webhookId === null) await tx.webhooks.setCreateDefaultPolicy(ctx.projectId, policy);
      await this.reschedule(tx, policy);
      const view = await this.view(tx, policy);
      await this.audit.record(tx, {
        type: 'webhook.rotation_policy.set',
        projectId: ctx.projectId,
        webhookId,
        actor: ctx.actor,
        requestId: ctx.requestId,
        occurredAt,
        data: {
          scope: scopeOf(webhookId),
          interval_days: policy.intervalDays,
          grace_period_hours: policy.gracePeriodHours,
          next_rotation_at: view.nextRotationAt.toISOString(),
        },
      });
      return view;
    });
  }

  /**
   * Removes a policy: future rotations stop. A webhook losing its own policy falls back to the project
   * default when there is one.
   */
  async removePolicy(ctx: RequestContext, webhookId: string | null): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (webhookId === null) await tx.webhooks.lockProjectCreates(ctx.projectId);
      const { occurredAt } = await this.policyChangeTime(tx, ctx, webhookId);
      if (!(await tx.rotation.deletePolicy(ctx.projectId, webhookId))) throw policyNotFound(webhookId);
      if (webhookId === null) {
        await tx.webhooks.setCreateDefaultPolicy(ctx.projectId, null);
        // After a webhook's own policy removal in flight, which may have fallen back to this default.
        await tx.rotation.lockLiveWebhooks(ctx.projectId);
        await tx.rotation.deleteProjectDefaultSchedules(ctx.projectId);
      } else {
        // Without the project's lock: a default changing meanwhile waits for this webhook's row lock before it
        // reads which webhooks follow it, so it reschedules (or unschedules) this one after this commit.
        const fallback = await tx.rotation.findPolicy(ctx.projectId, null);
        if (fallback) await this.scheduleOne(tx, webhookId, fallback);
        else await tx.rotation.deleteSchedule(webhookId);
      }
      await this.audit.record(tx, {
        type: 'webhook.rotation_policy.removed',
        projectId: ctx.projectId,
        webhookId,
        actor: ctx.actor,
        requestId: ctx.requestId,
        occurredAt,
        data: { scope: scopeOf(webhookId) },
      });
    });
  }

  /** Hands out the secret a scheduled rotation made, exactly once; no_unclaimed_secret otherwise. */
  async claim(
    ctx: RequestContext,
    webhookId: string,
    commitWith?: CommitWith<WebhookWithSecret>,
  ): Promise<WebhookWithSecret> {
    // The claim hands the secret out once: a response lost after the commit (the process killed, the connection
    // dropped) would leave it marked claimed with nobody holding it, and a retry would get 409. With an
    // Idempotency-Key the response commits with the claim, so the retry replays it.
    return this.db.transaction(async (tx) => {
      const webhook = await this.liveWebhook(tx, ctx, webhookId, true);
      const occurredAt = timeOfChange(this.clock.now(), webhook);
      const current = await tx.secrets.findCurrent(webhook.id);
      if (!current || current.claimed || !(await tx.rotation.markCurrentClaimed(current.id))) {
        throw new NoUnclaimedSecretError();
      }
      const secret = this.cipher.open(current, webhook.id);
      await tx.webhooks.markChanged(webhook.id, occurredAt);
      await this.audit.record(tx, {
        type: 'webhook.secret.claimed',
        projectId: ctx.projectId,
        webhookId: webhook.id,
        actor: ctx.actor,
        requestId: ctx.requestId,
        occurredAt,
        data: { fingerprint: current.fingerprint },
      });
      const claimed = { webhook, secret };
      if (commitWith) await commitWith(tx, claimed);
      return claimed;
    });
  }

  /** The current secret, the previous ones still signing, and the next scheduled rotation. */
  async status(ctx: RequestContext, webhookId: string): Promise<SecretStatusView> {
    const now = this.clock.now();
    return this.db.transaction(async (tx) => {
      const webhook = await this.liveWebhook(tx, ctx, webhookId, false);
      const valid = await tx.secrets.findValid(webhook.id, now);
      const current = valid.find((s) => s.state === 'current');
      if (!current) {
        // Deleted between the two reads (each sees what was committed when it ran; a delete destroys the secrets
        // in its own transaction): as if the request had come a moment later.
        await this.liveWebhook(tx, ctx, webhookId, false);
        // A live webhook always has a current secret; its absence is a broken invariant, not a client error.
        throw new Error(`webhook ${webhook.id} has no current secret`);
      }
      const schedule = await tx.rotation.findSchedule(webhook.id);
      return {
        current: {
          createdAt: current.createdAt,
          fingerprint: current.fingerprint,
          trigger: current.trigger,
          claimed: current.claimed,
        },
        previous: valid
          .filter((s) => s.state === 'previous' && s.expiresAt !== null)
          .map((s) => ({
            createdAt: s.createdAt,
            expiresAt: s.expiresAt as Date,
            fingerprint: s.fingerprint,
          })),
        nextRotationAt: schedule?.nextRotationAt ?? null,
      };
    });
  }

  /** Ends the grace period now: the previous secrets still signing are destroyed. Returns how many. */
  async revokePrevious(ctx: RequestContext, webhookId: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      const webhook = await this.liveWebhook(tx, ctx, webhookId, true);
      const now = this.clock.now();
      const fingerprints = await tx.rotation.destroyValidPrevious(webhook.id, now);
      if (fingerprints.length > 0) {
        const occurredAt = timeOfChange(now, webhook);
        await tx.webhooks.markChanged(webhook.id, occurredAt);
        await this.audit.record(tx, {
          type: 'webhook.secret.previous_revoked',
          projectId: ctx.projectId,
          webhookId: webhook.id,
          actor: ctx.actor,
          requestId: ctx.requestId,
          occurredAt,
          data: { fingerprints, revoked: fingerprints.length },
        });
      }
      return fingerprints.length;
    });
  }

  /**
   * The time of a policy change, read once the locks are held (the webhook's row, or the project's creates for
   * its default): `now` for the policy and its schedule, and `occurredAt` for its audit event, dated like the
   * webhook's own changes (see {@link timeOfChange}) so that a change that waited for the lock is not listed
   * before the changes that held it; a webhook's policy change records it as the webhook's last change.
   */
  private async policyChangeTime(
    tx: Repositories,
    ctx: RequestContext,
    webhookId: string | null,
  ): Promise<{ now: Date; occurredAt: Date }> {
    if (webhookId === null) {
      const now = this.clock.now();
      return { now, occurredAt: now };
    }
    const webhook = await this.liveWebhook(tx, ctx, webhookId, true);
    const now = this.clock.now();
    const occurredAt = timeOfChange(now, webhook);
    await tx.webhooks.markChanged(webhook.id, occurredAt);
    return { now, occurredAt };
  }

  private async liveWebhook(
    tx: Repositories,
    ctx: RequestContext,
    id: string,
    lock: boolean,
  ): Promise<WebhookEntity> {
    const webhook = lock
      ? await tx.webhooks.findLiveForUpdate(ctx.projectId, id)
      : await tx.webhooks.findLive(ctx.projectId, id);
    if (!webhook) throw new WebhookNotFoundError();
    return webhook;
  }

  /** Recomputes the schedules a policy governs: its webhook, or every webhook following the default. */
  private async reschedule(tx: Repositories, policy: RotationPolicyEntity): Promise<void> {
    if (policy.webhookId !== null) {
      await this.scheduleOne(tx, policy.webhookId, policy);
      return;
    }
    // Locked first, then read: a webhook's own policy, a rotation or a delete committed while this waited is
    // seen (see lockLiveWebhooks).
    await tx.rotation.lockLiveWebhooks(policy.projectId);
    const governed = await tx.rotation.webhooksFollowingDefault(policy.projectId);
    await tx.rotation.upsertSchedules(
      governed.map((w) => scheduleFor(w.webhookId, w.secretIssuedAt, policy)),
    );
  }

  /** Schedules one (row-locked) webhook under `policy`. */
  private async scheduleOne(
    tx: Repositories,
    webhookId: string,
    policy: RotationPolicyEntity,
  ): Promise<void> {
    const current = await tx.secrets.findCurrent(webhookId);
    if (!current) throw new Error(`webhook ${webhookId} has no current secret`);
    await tx.rotation.upsertSchedules([scheduleFor(webhookId, current.createdAt, policy)]);
  }

  private async view(tx: Repositories, policy: RotationPolicyEntity): Promise<RotationPolicyView> {
    // When a secret issued at `issuedAt` would next rotate under the policy.
    const nextFor = (issuedAt: Date) =>
      nextRotationAt(rotationAnchor(issuedAt, policy.createdAt), policy.intervalDays);
    if (policy.webhookId === null) {
      const summary = await tx.rotation.projectDefaultSummary(policy.projectId);
      return {
        policy,
        // With no webhook following it: a webhook created now (which never rotates before those already following).
        nextRotationAt: summary.nextRotationAt ?? nextFor(this.clock.now()),
        lastRotatedAt: summary.lastRotatedAt,
      };
    }
    const schedule = await tx.rotation.findSchedule(policy.webhookId);
    const current = await tx.secrets.findCurrent(policy.webhookId);
    return {
      policy,
      // The schedule is kept in step with the policy in the same transactions; computed again only if missing.
      nextRotationAt: schedule?.nextRotationAt ?? nextFor(current?.createdAt ?? this.clock.now()),
      lastRotatedAt: current && current.trigger !== 'created' ? current.createdAt : null,
    };
  }
}

function scheduleFor(
  webhookId: string,
  secretIssuedAt: Date,
  policy: RotationPolicyEntity,
): RotationSchedule {
  const anchorAt = rotationAnchor(secretIssuedAt, policy.createdAt);
  return {
    webhookId,
    projectId: policy.projectId,
    scope: scopeOf(policy.webhookId),
    intervalDays: policy.intervalDays,
    gracePeriodHours: policy.gracePeriodHours,
    anchorAt,
    nextRotationAt: nextRotationAt(anchorAt, policy.intervalDays),
  };
}

function policyNotFound(webhookId: string | null): NotFoundError {
  return new NotFoundError(
    webhookId === null
      ? 'this project has no default rotation policy'
      : 'this webhook has no rotation policy of its own',
  );
}
