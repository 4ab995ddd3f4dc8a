import { InjectQueue, Processor } from '@nestjs/bullmq';
import { Inject, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { DelayedError, type Job, type Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Clock, SecretsService, retryDelayMs, type UnreadableSecret } from '@app/domain';
import { Database, type AttemptOutcome, type ClaimedDelivery } from '@app/persistence';
import { DeliveryQueue, JobName, QueueName, attemptOfJobId, type JobPayloads } from '@app/queue';
import { deliveryHeaders } from '@app/signing';
import { QueueWorkerHost, logQueueError } from '../scheduling/queue-worker.host';
import { MicroBatcher } from './micro.batcher';
import { ProjectSlots, type AttemptSlot } from './project.slots';
import { SsrfSafeSender, classifyOutcome, type SendResult } from './ssrf-safe.sender';

/** Attempts in flight per worker process: sends mostly wait on the network, so many fit on one core. */
export const DELIVERY_CONCURRENCY = 200;
/**
 * Attempts to slow receivers, or to receivers not proven yet, one project may have in flight per worker process
 * (see {@link ProjectSlots}).
 */
export const DELIVERY_SHARE_PER_PROJECT = DELIVERY_CONCURRENCY / 4;
/** Attempts to slow or unproven receivers all projects together may have in flight per worker process: half. */
export const DELIVERY_SHARE_OF_LIMITED_RECEIVERS = DELIVERY_CONCURRENCY / 2;
/**
 * A request to a receiver taking longer than this makes the receiver slow for a minute; one ending sooner proves
 * it for a minute.
 */
export const SLOW_REQUEST_MS = 1000;
const SLOW_FOR_MS = 60_000;
/**
 * An attempt to a slow receiver over the limits is put back for 1 s, doubling each time the same job is put back,
 * up to 32 s, plus up to as long again (spread): a long backlog waits without keeping Redis busy.
 */
const SHARE_WAIT_MS = 1000;
const SHARE_WAIT_MAX_DOUBLINGS = 5;
/**
 * An attempt to an unproven receiver over the limits, or to a proven one with as many attempts in flight as it
 * answered lately, is put back for 250 to 500 ms, every time: within a second the receiver has answered (and takes
 * more) or is slow (and its attempts wait as above).
 */
const BRIEF_WAIT_MS = 250;

/** Injection token of the monotonic millisecond clock that times requests to receivers (tests replace it). */
export const REQUEST_TIMER = Symbol('REQUEST_TIMER');
/** Its provider: the process's monotonic clock, which wall-clock steps do not move. */
export const requestTimerProvider = { provide: REQUEST_TIMER, useValue: () => performance.now() };
/** Tries of a step after the claim: with the backoff, some two minutes of Postgres or Redis being away. */
const PERSEVERE_TRIES = 30;

/** What one job did, for the queue dashboard. */
export type AttemptSummary =
  { skipped: true } | { status: AttemptOutcome['status']; attempt: number; responseStatus: number | null };

/**
 * Makes delivery attempts. Each job is one attempt of one delivery (its number is in the job id); the attempt is
 * claimed in Postgres first, so a duplicated job never sends twice. The result is written to the delivery log and
 * the next attempt, if any, is queued as a delayed job: BullMQ's own retries are not used, so the schedule is
 * exactly DELIVERY_RETRY_SCHEDULE and every attempt is recorded. (BullMQ's retries of the job itself only
 * cover a claim that could not be made: the infrastructure failing before anything happened.)
 */
@Processor(QueueName.Delivery, { concurrency: DELIVERY_CONCURRENCY })
export class DeliveryProcessor extends QueueWorkerHost implements BeforeApplicationShutdown {
  private readonly logger = new Logger(DeliveryProcessor.name);
  private readonly schedule: readonly number[];

  private readonly claims = new MicroBatcher<{ id: string; attempt: number }, ClaimedDelivery | undefined>(
    async (keys) => {
      const claimed = await this.db.repos.deliveries.claimAttempts(dedupe(keys), this.clock.now());
      const byKey = new Map(claimed.map((c) => [`${c.id}/${c.attempt}`, c]));
      // A duplicate request in the same batch gets nothing: only one caller may make an attempt.
      return keys.map((k) => {
        const key = `${k.id}/${k.attempt}`;
        const found = byKey.get(key);
        byKey.delete(key);
        return found;
      });
    },
  );

  private readonly signingSecrets = new MicroBatcher<string, string[] | UnreadableSecret>(
    async (webhookIds) => {
      const found = await this.secrets.signingSecretsOf(
        this.db.repos,
        [...new Set(webhookIds)],
        this.clock.now(),
      );
      return webhookIds.map((id) => found.get(id) ?? []);
    },
  );

  private readonly outcomes = new MicroBatcher<AttemptOutcome, void>(async (outcomes) => {
    await this.db.repos.deliveries.recordOutcomes(outcomes);
    return outcomes.map(() => undefined);
  });

  private readonly slots: ProjectSlots;

  /** Attempts waiting out a failed step (see {@link persevere}). */
  private persevering = 0;
  private closing = false;

  constructor(
    private readonly db: Database,
    private readonly secrets: SecretsService,
    private readonly sender: SsrfSafeSender,
    private readonly queue: DeliveryQueue,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
    // The queue the worker consumes, as @nestjs/bullmq registers it: its connection's errors are logged too.
    @InjectQueue(QueueName.Delivery) consumed: Queue,
    @Inject(REQUEST_TIMER) timer: () => number,
  ) {
    super();
    this.schedule = config.delivery.retryScheduleSeconds;
    this.slots = new ProjectSlots({
      share: DELIVERY_SHARE_PER_PROJECT,
      limitedTotal: DELIVERY_SHARE_OF_LIMITED_RECEIVERS,
      slowAfterMs: SLOW_REQUEST_MS,
      slowForMs: SLOW_FOR_MS,
      now: timer,
    });
    consumed.on('error', (e: Error) => logQueueError(this.logger, 'delivery queue', e));
  }

  async process(job: Job, token?: string): Promise<AttemptSummary> {
    const name = job.name as JobName;
    switch (name) {
      case JobName.DeliveryAttempt:
        return this.attemptInShare(job, token);
      case JobName.RotationSweep:
      case JobName.SecretRotate:
      case JobName.AuditRelay:
      case JobName.SecretsExpire:
      case JobName.DeliveriesPurge:
      case JobName.AuditPurge:
        throw new Error(`job ${name} does not belong to the ${QueueName.Delivery} queue`);
    }
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  override async onApplicationShutdown(): Promise<void> {
    // Let the attempts in flight finish before their connections go.
    await super.onApplicationShutdown();
    this.sender.close();
  }

  /**
   * Makes the attempt in one of its project's slots. An attempt to a slow or unproven receiver over the limits
   * waits: the job goes back to the queue, delayed (see SHARE_WAIT_MS and BRIEF_WAIT_MS; BullMQ's delays run on
   * real time), and this slot goes to the next job, likely another receiver's. Nothing is claimed before, so
   * nothing is recorded: the attempt simply starts later.
   */
  private async attemptInShare(job: Job, token: string | undefined): Promise<AttemptSummary> {
    const { deliveryId, projectId, webhookId } = job.data as JobPayloads[typeof JobName.DeliveryAttempt];
    // Jobs queued before projects had shares carry no project; those queued before they named their webhook are
    // judged by their project as a whole.
    if (projectId === undefined || token === undefined) return this.attempt(job.id, deliveryId);
    const slot = this.slots.take(projectId, webhookId ?? projectId);
    if (typeof slot === 'string') {
      // attemptsStarted counts this job's starts, so also the times it was put back before.
      const wait =
        slot !== 'slow'
          ? BRIEF_WAIT_MS
          : SHARE_WAIT_MS * 2 ** Math.min(Math.max(job.attemptsStarted - 1, 0), SHARE_WAIT_MAX_DOUBLINGS);
      let putBack = false;
      try {
        await job.moveToDelayed(Date.now() + wait + Math.random() * wait, token);
        putBack = true;
      } catch (e) {
        // Redis refused the move: make the attempt now rather than fail the job (and use up one of its retries).
        this.logger.debug(`delivery ${deliveryId}: not put back (${(e as Error).message}); attempting now`);
      }
      if (putBack) throw new DelayedError();
      return this.attempt(job.id, deliveryId);
    }
    try {
      return await this.attempt(job.id, deliveryId, slot);
    } finally {
      slot.release();
    }
  }

  private async attempt(
    jobId: string | undefined,
    deliveryId: string,
    slot?: AttemptSlot,
  ): Promise<AttemptSummary> {
    const attempt = attemptOfJobId(jobId);
    if (attempt === undefined) {
      this.logger.warn({ jobId }, 'delivery job without an attempt number ignored');
      return { skipped: true };
    }
    // Before the claim nothing has happened: a failure here fails the job, and BullMQ runs it again later.
    const delivery = await this.claims.load({ id: deliveryId, attempt });
    if (!delivery) return { skipped: true };

    // After it, the attempt is this job's alone: a re-run of the job would find it claimed and skip it, leaving
    // it to the stranded-delivery rescue minutes later. So the steps after the claim wait out a short outage.
    const outcome = await this.send(delivery, slot);
    await this.persevere(deliveryId, 'recording the outcome', () => this.outcomes.load(outcome));
    if (outcome.status === 'pending') {
      await this.persevere(deliveryId, 'queueing the next attempt', () =>
        this.queue.schedule([
          {
            deliveryId,
            projectId: delivery.projectId,
            webhookId: delivery.webhookId,
            attempt: attempt + 1,
            delayMs: outcome.scheduledAt.getTime() - this.clock.now().getTime(),
          },
        ]),
      );
    }
    return { status: outcome.status, attempt, responseStatus: outcome.responseStatus };
  }

  /**
   * Runs a Postgres or Redis step of a claimed attempt until it works, backing off up to 5 s between tries, for
   * about {@link PERSEVERE_TRIES} tries (some two minutes), then fails the job.
   */
  private async persevere<T>(deliveryId: string, what: string, step: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        const result = await step();
        if (tries > 1 && --this.persevering === 0)
          this.logger.log('delivery: Postgres and Redis answer again');
        return result;
      } catch (e) {
        // At shutdown there is no time to wait (the process has a deadline): the attempt is left to the rescue.
        if (tries >= PERSEVERE_TRIES || this.closing) {
          if (tries > 1) this.persevering -= 1;
          this.logger.warn(
            { deliveryId, tries, err: e instanceof Error ? e.message : String(e) },
            `delivery: ${what} failed; the stranded-delivery rescue will queue the attempt again`,
          );
          throw e;
        }
        // One line per outage, not one per attempt in flight (up to 200).
        if (tries === 1 && this.persevering++ === 0)
          this.logger.warn(
            { deliveryId, err: e instanceof Error ? e.message : String(e) },
            `delivery: ${what} failed; attempts in flight wait for Postgres and Redis`,
          );
        await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** (tries - 1), 5000)));
      }
    }
  }

  private async send(d: ClaimedDelivery, slot: AttemptSlot | undefined): Promise<AttemptOutcome> {
    const started = this.clock.now();
    const final = (
      status: 'succeeded' | 'failed' | 'dead',
      responseStatus: number | null,
      error: string | null,
    ) => {
      const now = this.clock.now();
      return {
        id: d.id,
        attempt: d.attempt,
        status,
        responseStatus,
        errorMessage: error,
        scheduledAt: started,
        completedAt: now,
      };
    };
    // The next attempt on the schedule (not before `retryAfterSeconds`), or dead after the last one.
    const retry = (
      responseStatus: number | null,
      error: string,
      retryAfterSeconds: number | undefined,
    ): AttemptOutcome => {
      const delay = retryDelayMs(this.schedule, d.attempt, retryAfterSeconds);
      if (delay === undefined)
        return final('dead', responseStatus, `${error}; no attempts left in the retry schedule`);
      return {
        id: d.id,
        attempt: d.attempt,
        status: 'pending',
        responseStatus,
        errorMessage: error,
        scheduledAt: new Date(this.clock.now().getTime() + delay),
        completedAt: null,
      };
    };
    // A deleted webhook has no secret left to sign with; a disabled one gets nothing, retries included (a
    // receiver is often disabled because it is broken or gone, and re-enabling it does not bring them back).
    if (d.webhookDeleted)
      return final('failed', null, 'webhook was deleted; its signing secrets are destroyed');
    if (!d.webhookEnabled)
      return final('failed', null, 'webhook was disabled before this attempt; it is not sent');
    // A rescued delivery whose lost attempt was its last one.
    if (d.attempt > this.schedule.length)
      return final('dead', null, 'no attempts left in the retry schedule');
    const secrets = await this.persevere(d.id, 'reading the signing secrets', () =>
      this.signingSecrets.load(d.webhookId),
    );
    if (!Array.isArray(secrets)) {
      // An operator's matter (a key dropped from SECRETS_ENCRYPTION_KEYS before `secrets reencrypt`, a damaged
      // row), not the receiver's: the attempt is retried on the schedule, so putting the key back lets it through.
      this.logger.error(
        { deliveryId: d.id, webhookId: d.webhookId, reason: secrets.unreadable },
        'a signing secret of the webhook cannot be decrypted; the delivery is retried on its schedule',
      );
      return retry(null, 'a signing secret of the webhook cannot be decrypted', undefined);
    }
    if (secrets.length === 0) return final('failed', null, 'webhook has no valid signing secret');

    const timestamp = Math.floor(this.clock.now().getTime() / 1000);
    const headers = deliveryHeaders({
      eventType: d.eventType,
      deliveryId: d.id,
      timestamp,
      body: d.payload,
      secrets,
    });
    slot?.sending();
    // Over once the response body is read or dropped, not at the status: the request is timed, and its slot held,
    // for as long as it keeps a connection to the receiver.
    const result = await this.sender.send({ url: d.url, headers, body: d.payload });
    slot?.sent();
    const responseStatus = result.kind === 'response' ? result.status : null;
    switch (classifyOutcome(result)) {
      case 'succeeded':
        return final('succeeded', responseStatus, null);
      case 'failed':
        if (result.kind === 'refused' && result.address !== undefined) {
          this.logger.warn(
            { deliveryId: d.id, webhookId: d.webhookId, address: result.address },
            result.error,
          );
        }
        return final('failed', responseStatus, describe(result));
      case 'retry':
        return retry(
          responseStatus,
          describe(result),
          result.kind === 'response' && (result.status === 429 || result.status === 503)
            ? result.retryAfterSeconds
            : undefined,
        );
    }
  }
}

function describe(result: SendResult): string {
  return result.kind === 'response' ? `receiver answered HTTP ${result.status}` : result.error;
}

function dedupe(keys: { id: string; attempt: number }[]): { id: string; attempt: number }[] {
  const seen = new Set<string>();
  return keys.filter((k) => {
    const key = `${k.id}/${k.attempt}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
