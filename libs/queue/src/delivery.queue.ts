import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { JobName, QUEUE_PREFIX, QueueName, type JobPayloads } from './queue-names';
import { redisOptionsFromUrl } from './redis-connection';

/** One delivery attempt to schedule. */
export interface ScheduledAttempt {
  deliveryId: string;
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

/**
 * Producer side of the delivery queue, for the API (test events) and the worker (fan-out, retries). The BullMQ
 * client is created on first use, so processes that never deliver (the CLI) open no Redis connection for it.
 */
@Injectable()
export class DeliveryQueue implements OnApplicationShutdown {
  private queue: Queue | undefined;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** Adds one job per attempt, in one round trip. */
  async schedule(attempts: ScheduledAttempt[]): Promise<void> {
    if (attempts.length === 0) return;
    const data = (deliveryId: string): JobPayloads[typeof JobName.DeliveryAttempt] => ({ deliveryId });
    await this.client().addBulk(
      attempts.map((a) => ({
        name: JobName.DeliveryAttempt,
        data: data(a.deliveryId),
        opts: {
          jobId: deliveryAttemptJobId(a.deliveryId, a.attempt),
          delay: Math.max(0, Math.round(a.delayMs)),
          // The delivery row is the record of every attempt; finished jobs would only fill Redis, and a kept
          // failed job would block the rescue sweep from queueing the same attempt again.
          removeOnComplete: true,
          removeOnFail: true,
          // Retries of the job itself cover infrastructure errors (Postgres briefly away); delivery retries are
          // separate jobs, and the attempt claim keeps a retried job from sending twice.
          attempts: 3,
          backoff: { type: 'exponential', delay: 1000 },
        },
      })),
    );
  }

  /** Whether the job of this attempt is still in the queue (waiting, delayed or running). */
  async isQueued(deliveryId: string, attempt: number): Promise<boolean> {
    return (await this.client().getJob(deliveryAttemptJobId(deliveryId, attempt))) !== undefined;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queue?.close();
  }

  private client(): Queue {
    this.queue ??= new Queue(QueueName.Delivery, {
      // Fail fast while Redis is away (the caller answers 503 or retries) instead of queueing in memory.
      connection: { ...redisOptionsFromUrl(this.config.redis.url), enableOfflineQueue: false },
      prefix: QUEUE_PREFIX,
    });
    // Failures surface on the calls that fail; an unhandled 'error' event would crash the process instead.
    this.queue.on('error', () => undefined);
    return this.queue;
  }
}
