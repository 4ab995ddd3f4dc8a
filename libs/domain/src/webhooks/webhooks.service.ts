import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, blankCredentialLike, type AppConfig } from '@app/config';
import { AuditRecorder, type FieldChange } from '@app/audit';
import { Database, WebhookEntity, type Repositories, type WebhookChanges } from '@app/persistence';
import { normalizeEvents } from '@app/validation';
import { Clock } from '../clock';
import { commitChange, type CommitWith } from '../commit-with';
import { WebhookLimitReachedError, WebhookNotFoundError } from '../errors';
import { isPrefixedUlid, newWebhookId } from '../ids';
import type { RequestContext } from '../request-context';
import { SecretsService } from '../secrets/secrets.service';
import { timeOfChange } from './time-of-change';
import { redactUrl } from './webhook-url-redaction';

/** Input of a create, already validated by the caller's DTO rules. */
export interface CreateWebhookInput {
  url: string;
  subscribedEvents: string[];
  description?: string | null;
}

/** Input of an update; absent fields stay as they are, a null description clears it. */
export interface UpdateWebhookInput {
  url?: string;
  description?: string | null;
  subscribedEvents?: string[];
  enabled?: boolean;
}

/** A webhook with its signing secret in the clear: returned by create and rotate only. */
export interface WebhookWithSecret {
  webhook: WebhookEntity;
  secret: string;
}

/** Webhook use cases: every change commits with its audit event. */
@Injectable()
export class WebhooksService {
  constructor(
    private readonly db: Database,
    private readonly secrets: SecretsService,
    private readonly audit: AuditRecorder,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Registers a webhook and issues its first secret, within the project's live-webhook limit. `commitWith`
   * commits with it (see {@link CommitWith}).
   */
  async create(
    ctx: RequestContext,
    input: CreateWebhookInput,
    commitWith?: CommitWith<WebhookWithSecret>,
  ): Promise<WebhookWithSecret> {
    const now = this.clock.now();
    const limit = this.config.webhooks.maxPerProject;
    const webhook = new WebhookEntity();
    webhook.id = newWebhookId();
    webhook.projectId = ctx.projectId;
    webhook.url = input.url;
    webhook.description = input.description ?? null;
    webhook.subscribedEvents = normalizeEvents(input.subscribedEvents);
    webhook.enabled = true;
    webhook.createdAt = now;
    webhook.updatedAt = now;
    webhook.deletedAt = null;
    webhook.lastChangeAt = null;
    const { issued, row } = this.secrets.newSecret(webhook.id, 'created');
    const audit = this.audit.rowOf({
      type: 'webhook.created',
      projectId: ctx.projectId,
      webhookId: webhook.id,
      actor: ctx.actor,
      requestId: ctx.requestId,
      occurredAt: now,
      data: {
        url: redactUrl(webhook.url),
        description: blankCredentialLike(webhook.description),
        subscribed_events: webhook.subscribedEvents,
        enabled: true,
        fingerprint: issued.fingerprint,
      },
    });
    const created = { webhook, secret: issued.secret };
    // One statement, atomic on its own: the slot, the rows and the audit event commit together or not at all.
    const insert = (repos: Repositories) => repos.webhooks.insertWithinLimit(webhook, limit, row, audit);
    const inserted = await commitChange(this.db, insert, commitWith, (ok) => (ok ? created : null));
    if (!inserted) throw new WebhookLimitReachedError(limit);
    this.audit.committed();
    return created;
  }

  /** Live webhooks of the project, oldest first. */
  async list(ctx: RequestContext): Promise<WebhookEntity[]> {
    return this.db.repos.webhooks.listLive(ctx.projectId);
  }

  /** One live webhook of the project; another project's is reported exactly like a missing one. */
  async get(ctx: RequestContext, id: string): Promise<WebhookEntity> {
    const webhook = await this.db.repos.webhooks.findLive(ctx.projectId, id);
    if (!webhook) throw new WebhookNotFoundError();
    return webhook;
  }

  /** Applies the fields that really change; an update that changes nothing leaves `updated_at` alone. */
  async update(ctx: RequestContext, id: string, input: UpdateWebhookInput): Promise<WebhookEntity> {
    return this.db.transaction(async (tx) => {
      const webhook = await tx.webhooks.findLiveForUpdate(ctx.projectId, id);
      if (!webhook) throw new WebhookNotFoundError();
      const now = timeOfChange(this.clock.now(), webhook);
      const changes: WebhookChanges = {};
      const audited: FieldChange[] = [];
      if (input.url !== undefined && input.url !== webhook.url) {
        changes.url = input.url;
        audited.push({ field: 'url', from: redactUrl(webhook.url), to: redactUrl(input.url) });
      }
      if (input.description !== undefined && input.description !== webhook.description) {
        changes.description = input.description;
        audited.push({
          field: 'description',
          from: blankCredentialLike(webhook.description),
          to: blankCredentialLike(input.description),
        });
      }
      if (input.subscribedEvents !== undefined) {
        const events = normalizeEvents(input.subscribedEvents);
        if (events.join('\n') !== webhook.subscribedEvents.join('\n')) {
          changes.subscribedEvents = events;
          audited.push({ field: 'subscribed_events', from: webhook.subscribedEvents, to: events });
        }
      }
      if (input.enabled !== undefined && input.enabled !== webhook.enabled) {
        changes.enabled = input.enabled;
        audited.push({ field: 'enabled', from: webhook.enabled, to: input.enabled });
      }
      if (audited.length === 0) return webhook;
      const updated = Object.assign(webhook, changes, { updatedAt: now });
      const audit = this.audit.prepare(tx, {
        type: 'webhook.updated',
        projectId: ctx.projectId,
        webhookId: webhook.id,
        actor: ctx.actor,
        requestId: ctx.requestId,
        occurredAt: now,
        data: { changes: audited },
      });
      await tx.webhooks.updateWithAudit(updated, audit);
      return updated;
    });
  }

  /** Soft-deletes a webhook: it disappears, frees its slot, and its secrets are destroyed at once. */
  async remove(ctx: RequestContext, id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      // Lock order everywhere: the project's counter, then the webhook row (no deadlock with policy changes). One
      // shard of the counter is enough to give a slot back; all of them only when none counts a webhook.
      const shard = await tx.webhooks.lockReleasableShard(ctx.projectId);
      if (shard === null) await tx.webhooks.lockProjectCreates(ctx.projectId);
      const webhook = await tx.webhooks.findLiveForUpdate(ctx.projectId, id);
      if (!webhook) throw new WebhookNotFoundError();
      const now = timeOfChange(this.clock.now(), webhook);
      await tx.webhooks.softDelete(webhook.id, now);
      await tx.webhooks.releaseSlot(ctx.projectId, shard);
      // A deleted webhook never rotates again; its own policy goes with it, recorded as any policy removal is, so
      // that a subscriber following policies sees it go.
      await tx.rotation.deleteSchedule(webhook.id);
      if (await tx.rotation.deletePolicy(ctx.projectId, webhook.id)) {
        await this.audit.record(tx, {
          type: 'webhook.rotation_policy.removed',
          projectId: ctx.projectId,
          webhookId: webhook.id,
          actor: ctx.actor,
          requestId: ctx.requestId,
          occurredAt: now,
          data: { scope: 'webhook' },
        });
      }
      const destroyed = await this.secrets.destroyAll(tx, webhook.id);
      await this.audit.record(tx, {
        type: 'webhook.deleted',
        projectId: ctx.projectId,
        webhookId: webhook.id,
        actor: ctx.actor,
        requestId: ctx.requestId,
        occurredAt: now,
        data: { secrets_destroyed: destroyed },
      });
    });
  }

  /**
   * Issues a new secret now, in one round trip to Postgres (the rotation is a database function, its own
   * transaction). The outgoing current secret is retired by one rule: an unclaimed one (made by a scheduled
   * rotation nobody fetched) is destroyed, since no receiver can hold it, and reported as
   * `superseded_unclaimed_fingerprint`; a claimed one keeps signing as previous until now + the grace period
   * (reported as `previous_fingerprint` and `previous_expires_at`), or is destroyed at once when the grace
   * period is 0; a webhook keeps at most MAX_PREVIOUS_SECRETS previous secrets, the oldest going first. Restarts the rotation clock and records `webhook.secret.rotated`. Rotations of one webhook
   * are serialised by its row lock, and each decides on the secret that is current once it holds the lock:
   * each returns a distinct secret and exactly one is current afterwards.
   */
  async rotateSecret(
    ctx: RequestContext,
    id: string,
    opts: { gracePeriodHours?: number } = {},
    commitWith?: CommitWith<WebhookWithSecret>,
  ): Promise<WebhookWithSecret> {
    const now = this.clock.now();
    const { issued, row } = this.secrets.newSecret(id, 'manual');
    const audit = this.audit.rowOf({
      type: 'webhook.secret.rotated',
      projectId: ctx.projectId,
      webhookId: id,
      actor: ctx.actor,
      requestId: ctx.requestId,
      occurredAt: now,
      data: {
        trigger: 'manual',
        fingerprint: issued.fingerprint,
        // Filled in by the database from the secret it retires, which only it knows once it holds the lock.
        previous_fingerprint: null,
        previous_expires_at: null,
      },
    });
    const gracePeriodHours = opts.gracePeriodHours ?? this.config.secrets.gracePeriodHours;
    // The expiry of a previous secret the rotation destroys at once, if it does: the outgoing one with no grace
    // period, or else the oldest previous one when the outgoing one makes more than a webhook keeps
    // (MAX_PREVIOUS_SECRETS). Whether, and which, only the database knows once it holds the lock.
    const expired = this.audit.rowOf({
      type: 'webhook.secret.previous_expired',
      projectId: ctx.projectId,
      webhookId: id,
      actor: ctx.actor,
      requestId: ctx.requestId,
      occurredAt: now,
      // Filled in by the database, like the rotation's previous_* fields.
      data: { fingerprint: '', expired_at: '' },
    });
    const rotate = (repos: Repositories) =>
      repos.webhooks.rotateSecret(ctx.projectId, id, gracePeriodHours, row, audit, now, expired);
    const webhook = await commitChange(this.db, rotate, commitWith, (rotated) =>
      rotated ? { webhook: rotated, secret: issued.secret } : null,
    );
    if (!webhook) throw new WebhookNotFoundError();
    this.audit.committed();
    return { webhook, secret: issued.secret };
  }

  /** Records that a create or update was refused by a URL rule: the host and the rules, never the URL's query. */
  async recordUrlRejected(
    ctx: RequestContext,
    operation: 'create' | 'update',
    host: string | null,
    rules: string[],
    webhookId: string | null = null,
  ): Promise<void> {
    // Only name a webhook the caller's project really has; an id from the path proves nothing by itself (and one
    // that is not a webhook id at all, a NUL included, names none: Postgres could not even compare it).
    const known =
      webhookId && isPrefixedUlid(webhookId, 'wh_')
        ? await this.db.repos.webhooks.findLive(ctx.projectId, webhookId)
        : null;
    await this.audit.record(this.db.repos, {
      type: 'webhook.url_rejected',
      projectId: ctx.projectId,
      webhookId: known?.id ?? null,
      actor: ctx.actor,
      requestId: ctx.requestId,
      occurredAt: this.clock.now(),
      data: { operation, host: hostForEvent(host), rule: rules[0] ?? 'form', rules },
    });
  }
}

/** The longest host name DNS allows (RFC 1035). */
const MAX_HOST_NAME = 253;

/**
 * A refused host as an audit event keeps it: cut to the longest real host name, with an ellipsis, so that
 * refused requests cannot fill the audit history and its stream with whatever size they send, and with anything
 * shaped like an API key or a secret blanked (a client that pasted one where the host goes).
 */
function hostForEvent(host: string | null): string | null {
  if (host === null) return null;
  const kept = blankCredentialLike(host);
  return kept.length <= MAX_HOST_NAME ? kept : `${kept.slice(0, MAX_HOST_NAME)}…`;
}
