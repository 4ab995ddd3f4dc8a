import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  Database,
  type AttemptOutcome,
  type DeliveryEntity,
  type DeliveryStatus,
  type NewDelivery,
  type Repositories,
} from '@app/persistence';
import { DeliveryQueue, type ScheduledAttempt } from '@app/queue';
import { Clock } from '../clock';
import type { CommitWith } from '../commit-with';
import { WebhookDisabledError, WebhookNotFoundError } from '../errors';
import { newEventId, newUuid } from '../ids';
import { inBatches } from '../in-batches';
import type { RequestContext } from '../request-context';
import { serializeEventBody, testEventContent } from './event-body';
import { retryDelayMs } from './retry-schedule';

/** How long the delivery log keeps a delivery (the API contract's 7 days). */
export const DELIVERY_RETENTION_MS = 7 * 24 * 3600 * 1000;
/**
 * A pending delivery this far past its due time, whose attempt job is not in the queue, has lost it. Longer than
 * an attempt takes (10 s at most, plus some two minutes of waiting out an outage after its claim, during which the
 * job is still in the queue) and than the job's own retries of a failed claim (some two minutes).
 */
const STRANDED_AFTER_MS = 3 * 60 * 1000;

/** An event read from the events stream, already validated. */
export interface PublishedEvent {
  id: string;
  type: string;
  projectId: string;
  text: string | null;
  data: unknown;
  /** When the event was published (the stream entry's time). */
  created: Date;
}

/** Filters and page of the delivery log, already validated. */
export interface DeliveryLogQuery {
  limit: number;
  offset: number;
  status?: DeliveryStatus;
  eventType?: string;
  since?: Date;
  until?: Date;
}

/** One page of the delivery log. */
export interface DeliveryLogPage {
  rows: DeliveryEntity[];
  total: number;
}

/**
 * Creating deliveries (test events, fan-out of published events) and reading the delivery log. A delivery row is
 * committed before its first attempt is queued, so nothing is ever sent that the log does not know about.
 */
@Injectable()
export class DeliveriesService {
  private readonly logger = new Logger('Deliveries');
  /** Where the stranded-delivery rescue goes on from (see {@link rescueStranded}); per process. */
  private rescueCursor: { scheduledAt: Date; id: string } | undefined;

  constructor(
    private readonly db: Database,
    private readonly queue: DeliveryQueue,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Sends a synthetic event of `eventType` to one enabled webhook through the real delivery path. */
  async sendTest(
    ctx: RequestContext,
    webhookId: string,
    eventType: string,
    commitWith?: CommitWith<{ externalEventId: string; eventType: string }>,
  ): Promise<{ externalEventId: string; eventType: string }> {
    // Nothing is recorded while the event could not be queued: the caller gets a 503 and retries, and no
    // second test event goes out later for the refused call.
    await this.queue.ensureConnected();
    const now = this.clock.now();
    const externalEventId = newEventId();
    const delivery = await this.db.transaction(async (tx) => {
      const webhook = await tx.webhooks.findLive(ctx.projectId, webhookId);
      if (!webhook) throw new WebhookNotFoundError();
      if (!webhook.enabled) throw new WebhookDisabledError();
      const { text, data } = testEventContent(eventType, webhook.id);
      const event: PublishedEvent = {
        id: externalEventId,
        type: eventType,
        projectId: ctx.projectId,
        text,
        data,
        created: now,
      };
      const row = this.newDelivery(webhook.id, event, now, deliveryBody(event));
      await tx.deliveries.insertMany([row]);
      await commitWith?.(tx, { externalEventId, eventType });
      return row;
    });
    try {
      await this.queue.schedule([this.firstAttempt(delivery, now)]);
    } catch (e) {
      // Redis went away between the check and here. The delivery is recorded (pending in the log), and the
      // worker's rescue sweep queues it once its job is found missing: accepted all the same.
      this.logger.warn(
        { delivery_id: delivery.id, reason: (e as Error).message },
        'test event recorded but not queued; the rescue sweep will queue it',
      );
    }
    return { externalEventId, eventType };
  }

  /** A page of one webhook's delivery log, newest first. */
  async list(ctx: RequestContext, webhookId: string, query: DeliveryLogQuery): Promise<DeliveryLogPage> {
    const webhook = await this.db.repos.webhooks.findLive(ctx.projectId, webhookId);
    if (!webhook) throw new WebhookNotFoundError();
    return this.db.repos.deliveries.page(
      {
        webhookId: webhook.id,
        status: query.status,
        eventType: query.eventType,
        since: query.since,
        until: query.until,
      },
      query.limit,
      query.offset,
    );
  }

  /**
   * Fans published events out to the enabled, live webhooks of their project subscribed to their type: one
   * delivery row per (event, webhook), committed together, then the first attempts are queued. Idempotent: an
   * event recorded before gets no second row, and its deliveries still waiting are queued again (the job ids
   * de-duplicate). Resolves once everything is recorded and queued, so the caller may acknowledge the events.
   * `firstOffset` is the place of the first event among those read together, when they are recorded in parts.
   */
  async recordPublished(events: PublishedEvent[], firstOffset = 0): Promise<{ deliveries: number }> {
    if (events.length === 0) return { deliveries: 0 };
    const now = this.clock.now();
    const { rows, inserted, awaiting } = await this.db.transaction(async (tx: Repositories) => {
      const subscribers = await tx.deliveries.findSubscribers([...new Set(events.map((e) => e.projectId))]);
      const rows: NewDelivery[] = [];
      for (const [n, event] of events.entries()) {
        // One body per event, shared by its deliveries (every webhook is sent the same bytes).
        let payload: string | undefined;
        for (const webhook of subscribers) {
          if (webhook.projectId !== event.projectId || !webhook.subscribedEvents.includes(event.type))
            continue;
          payload ??= deliveryBody(event);
          // The events of the batch share `now`: the n-th is recorded n µs later, so the log keeps their order.
          rows.push({
            ...this.newDelivery(webhook.id, event, now, payload),
            createdAtOffsetMicros: firstOffset + n,
          });
        }
      }
      const inserted = new Set(await tx.deliveries.insertMany(rows));
      const repeats = rows.filter((r) => !inserted.has(r.id));
      const awaiting = await tx.deliveries.findAwaitingFirstAttempt(repeats);
      return { rows, inserted, awaiting };
    });
    await this.queue.schedule([
      ...rows.filter((r) => inserted.has(r.id)).map((r) => this.firstAttempt(r, now)),
      ...awaiting.map((r) => this.firstAttempt(r, now)),
    ]);
    return { deliveries: inserted.size };
  }

  /**
   * Removes deleted webhooks whose delivery log has been purged (their rows were kept only for it), in bounded
   * batches; returns how many.
   */
  async purgeDeletedWebhooks(batchSize = 1000, stopping?: () => boolean): Promise<number> {
    const cutoff = new Date(this.clock.now().getTime() - DELIVERY_RETENTION_MS);
    return inBatches(
      batchSize,
      (limit) => this.db.repos.webhooks.purgeDeletedBefore(cutoff, limit),
      stopping,
    );
  }

  /** Deletes deliveries older than the retention period in bounded batches; returns how many. */
  async purgeExpired(batchSize = 1000, stopping?: () => boolean): Promise<number> {
    const cutoff = new Date(this.clock.now().getTime() - DELIVERY_RETENTION_MS);
    return inBatches(
      batchSize,
      (limit) => this.db.repos.deliveries.purgeCreatedBefore(cutoff, limit),
      stopping,
    );
  }

  /**
   * Queues again the pending deliveries whose job was lost (Redis lost it, the enqueue after a commit failed, a
   * worker died mid-attempt): pending rows long past their due time whose attempt job is no longer in the queue.
   * A claimed attempt counts as made, so the next one is queued, never before the retry schedule allows: when the
   * claimed attempt's outcome was never written, `scheduled_at` is still that attempt's due time, so the next one
   * waits until the attempt's start plus the schedule's delay. A delivery whose lost attempt was the schedule's
   * last is dead. Once `stopping` says so (the worker is shutting down), it ends after the page in flight; the
   * next run goes on from there.
   */
  async rescueStranded(
    batchSize = 500,
    stopping: () => boolean = () => false,
    maxRows = 100_000,
  ): Promise<number> {
    const now = this.clock.now();
    const before = new Date(now.getTime() - STRANDED_AFTER_MS);
    let rescued = 0;
    // Page by page, in due order: a backlog of merely late deliveries at the head must not hide lost ones behind
    // it. Bounded per run; the next run (a minute later) goes on where this one stopped, and starts over from
    // the oldest once it has reached the end.
    let after = this.rescueCursor;
    for (let seen = 0; seen < maxRows && !stopping();) {
      const page = await this.db.repos.deliveries.findStranded(before, batchSize, after);
      // The page's jobs looked up in one round trip: its current attempt's and the next one's, for each row.
      const queued = await this.queue.areQueued(
        page.flatMap((d) => [
          { deliveryId: d.id, attempt: d.attempt },
          { deliveryId: d.id, attempt: d.attempt + 1 },
        ]),
      );
      const lost: ScheduledAttempt[] = [];
      const exhausted: AttemptOutcome[] = [];
      for (const [i, d] of page.entries()) {
        // Merely late (a backlog) or running right now: leave it alone, or the attempt could go out twice.
        if (queued[2 * i] || queued[2 * i + 1]) continue;
        // Due when the row says, and never before the schedule's least wait (no jitter) after the claimed attempt
        // went out; rows without a claim time (none yet, or from before the column) as the row says.
        let dueAt = d.scheduledAt.getTime();
        if (d.attemptedAt !== null) {
          const wait = retryDelayMs(this.config.delivery.retryScheduleSeconds, d.attempt, undefined, () => 0);
          if (wait === undefined) {
            exhausted.push({
              id: d.id,
              attempt: d.attempt,
              status: 'dead',
              responseStatus: null,
              errorMessage: `attempt ${d.attempt} went out but its outcome was not recorded, and the retry schedule has no further attempt`,
              scheduledAt: d.attemptedAt,
              completedAt: now,
            });
            continue;
          }
          dueAt = Math.max(dueAt, d.attemptedAt.getTime() + wait);
        }
        lost.push({
          deliveryId: d.id,
          projectId: d.projectId,
          webhookId: d.webhookId,
          attempt: d.attempt + 1,
          delayMs: Math.max(0, dueAt - now.getTime()),
        });
      }
      await this.queue.schedule(lost);
      // Only where the attempt is still the latest and the delivery pending (as for every outcome).
      await this.db.repos.deliveries.recordOutcomes(exhausted);
      rescued += lost.length + exhausted.length;
      seen += page.length;
      if (page.length < batchSize) {
        after = undefined;
        break;
      }
      const last = page[page.length - 1];
      after = { scheduledAt: last.scheduledAt, id: last.id };
    }
    this.rescueCursor = after;
    return rescued;
  }

  private newDelivery(webhookId: string, event: PublishedEvent, now: Date, payload: string): NewDelivery {
    const firstDelaySeconds = this.config.delivery.retryScheduleSeconds[0] ?? 0;
    return {
      id: newUuid(),
      webhookId,
      projectId: event.projectId,
      externalEventId: event.id,
      eventType: event.type,
      payload,
      scheduledAt: new Date(now.getTime() + firstDelaySeconds * 1000),
      createdAt: now,
    };
  }

  private firstAttempt(
    d: { id: string; projectId: string; webhookId: string; scheduledAt: Date },
    now: Date,
  ): ScheduledAttempt {
    return {
      deliveryId: d.id,
      projectId: d.projectId,
      webhookId: d.webhookId,
      attempt: 1,
      delayMs: d.scheduledAt.getTime() - now.getTime(),
    };
  }
}

/** The body receivers get for an event, published or a test. */
function deliveryBody(event: PublishedEvent): string {
  return serializeEventBody({
    id: event.id,
    type: event.type,
    created: event.created.toISOString(),
    project_id: event.projectId,
    text: event.text,
    data: event.data,
  });
}
