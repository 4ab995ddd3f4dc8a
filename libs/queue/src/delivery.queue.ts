import { Inject, Injectable, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { JobName, QUEUE_PREFIX, QueueName, type JobPayloads } from './queue-names';
import { closeQueue, queueReady } from './queue-connection';
import { bullConnection } from './redis-connection';
import { probeRedis } from './redis-probe';
import { withTimeout } from './with-timeout';

/** One delivery attempt to schedule. */
export interface ScheduledAttempt {
  deliveryId: string;
  /** The delivery's project: the worker keeps one project from taking every attempt slot. */
  projectId: string;
  /** The delivery's webhook: the worker tells receivers that answer from those that do not. */
  webhookId: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** How long from now the attempt is due; 0 or less means at once. */
  delayMs: number;
}

/**
 * Job id of attempt `attempt` of a delivery. Deterministic, so scheduling the same attempt twice (a stream
 * entry read again, a rescue sweep) adds nothing while the first job still exists. No `:` (BullMQ refuses it).
 */
export function deliveryAttemptJobId(deliveryId: string, attempt: number): string {
  return `${deliveryId}-${attempt}`;
}

/** The attempt number encoded in a job id of {@link deliveryAttemptJobId}, or undefined for another id. */
export function attemptOfJobId(jobId: string | undefined): number | undefined {
  const m = /^[0-9a-f-]{36}-(\d+)$/.exec(jobId ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Injection token overriding {@link QUEUE_CONNECT_WAIT_MS} (tests). */
export const QUEUE_CONNECT_WAIT = Symbol('QUEUE_CONNECT_WAIT');

/** How long a call waits for the queue's Redis connection before it reports Redis unavailable. */
export const QUEUE_CONNECT_WAIT_MS = 2000;
/** Longest wait for one command of the delivery queue's connection. */
const QUEUE_COMMAND_TIMEOUT_MS = 10_000;

/**
 * Producer side of the delivery queue, for the API (test events) and the worker (fan-out, retries). The BullMQ
 * client is created on first use, so processes that never deliver (the CLI) open no Redis connection for it.
 *
 * Every call fails within {@link QUEUE_CONNECT_WAIT_MS} while Redis is away, with an error the API answers as
 * 503: BullMQ itself would wait for its first connection for as long as Redis stays down, and a request with
 * it. Once connected, commands fail at once while Redis is away (no offline queue).
 */
@Injectable()
export class DeliveryQueue implements OnApplicationShutdown {
  private queue: Queue | undefined;
  private closed = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() @Inject(QUEUE_CONNECT_WAIT) private readonly connectWaitMs: number = QUEUE_CONNECT_WAIT_MS,
  ) {}

  /**
   * Resolves once the queue can take jobs: connected, and Redis answers a PING within the connect wait (a Redis
   * that hangs keeps its connections open). Rejects with "Redis is unavailable" otherwise. For a caller that
   * should not commit work it cannot queue (the work would still be queued later by the rescue sweep, but the
   * caller would have answered an error for it).
   */
  async ensureConnected(): Promise<void> {
    const queue = await this.connected();
    // BullMQ types its client by what it needs itself; it is the ioredis client made from our options.
    const client = (await queue.client) as unknown as Redis;
    try {
      await withTimeout(
        probeRedis(client),
        this.connectWaitMs,
        () => new Error(`no answer in ${this.connectWaitMs} ms`),
      );
    } catch (e) {
      throw new Error(`Redis is unavailable: the delivery queue gets no answer (${(e as Error).message})`);
    }
  }

  /** Adds one job per attempt, in one round trip. */
  async schedule(attempts: ScheduledAttempt[]): Promise<void> {
    if (attempts.length === 0) return;
    const data = (a: ScheduledAttempt): JobPayloads[typeof JobName.DeliveryAttempt] => ({
      deliveryId: a.deliveryId,
      projectId: a.projectId,
      webhookId: a.webhookId,
    });
    await (
      await this.connected()
    ).addBulk(
      attempts.map((a) => ({
        name: JobName.DeliveryAttempt,
        data: data(a),
        opts: {
          jobId: deliveryAttemptJobId(a.deliveryId, a.attempt),
          delay: Math.max(0, Math.round(a.delayMs)),
          // The delivery row is the record of every attempt; finished jobs would only fill Redis, and a kept
          // failed job would block the rescue sweep from queueing the same attempt again.
          removeOnComplete: true,
          removeOnFail: true,
          // Retries of the job itself cover a claim that failed (Postgres away): 1 s, 2 s, … 64 s apart, some two
          // minutes in all, so a short outage delays the attempt instead of leaving it to the stranded-delivery
          // rescue. Delivery retries are separate jobs, and the attempt claim keeps a retried job from sending
          // twice.
          attempts: 8,
          backoff: { type: 'exponential', delay: 1000 },
        },
      })),
    );
  }

  /**
   * Whether the job of each attempt is still in the queue (waiting, delayed or running), in one round trip: whether
   * its job hash exists (what BullMQ's `getJob` reads, without reading it). The keys share the queue's hash-tagged
   * prefix, so one pipeline serves a Redis Cluster too.
   */
  async areQueued(attempts: { deliveryId: string; attempt: number }[]): Promise<boolean[]> {
    if (attempts.length === 0) return [];
    const queue = await this.connected();
    const client = (await queue.client) as unknown as Redis;
    const pipeline = client.pipeline();
    for (const a of attempts) pipeline.exists(queue.toKey(deliveryAttemptJobId(a.deliveryId, a.attempt)));
    const answers = (await pipeline.exec()) ?? [];
    return attempts.map((_, i) => {
      const [error, found] = answers[i] ?? [new Error('no answer from Redis')];
      if (error) throw error;
      return found === 1;
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.queue) await closeQueue(this.queue);
  }

  /** The queue once its connection is ready, or a rejection after the connect wait. */
  private async connected(): Promise<Queue> {
    const queue = this.client();
    await queueReady(queue, this.connectWaitMs, 'the delivery queue');
    return queue;
  }

  private client(): Queue {
    if (this.queue) return this.queue;
    // A first use after shutdown would open a connection that nothing closes any more.
    if (this.closed) throw new Error('the delivery queue is closed: the process is stopping');
    this.queue = new Queue(QueueName.Delivery, {
      // Fail fast while Redis is away (the caller answers 503 or retries) instead of queueing in memory.
      // A Redis that hangs instead of refusing fails a call instead of holding it. Not as short as the connect
      // wait: the worker's fan-out adds a few thousand jobs in one MULTI, which a busy but healthy Redis may take
      // a while to answer.
      connection: bullConnection(this.config.redis, {
        enableOfflineQueue: false,
        commandTimeout: QUEUE_COMMAND_TIMEOUT_MS,
      }),
      prefix: QUEUE_PREFIX,
    });
    // Failures surface on the calls that fail; an unhandled 'error' event would crash the process instead.
    // Once, when the queue is made: a listener per call would pile up for the life of the process.
    this.queue.on('error', () => undefined);
    return this.queue;
  }
}
