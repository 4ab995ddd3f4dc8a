import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  QUEUE_PREFIX,
  QueueName,
  REDIS,
  SHARED_COMMAND_TIMEOUT_MS,
  createRedis,
  queueReady,
} from '@app/queue';

/** Jobs of one queue by state. */
export type QueueDepths = Record<string, number>;

// BullMQ 5's key layout: `<prefix>:<queue>:<state>`, a list or a sorted set per state. Reading it directly
// needs no queue handle (and no connection) per queue unless the dashboard is on. Every key of a queue carries the
// `{webhooks}` hash tag, so the pipeline below stays in one slot on Redis Cluster.
const LIST_STATES = ['wait', 'paused', 'active'] as const;
const ZSET_STATES = ['delayed', 'prioritized', 'waiting-children', 'failed', 'completed'] as const;

/**
 * Every BullMQ queue as seen by the API: depths for /metrics (one pipelined round trip on the shared client)
 * and, only when the dashboard is enabled, read-side BullMQ handles for Bull Board. The API never adds or
 * processes jobs through these.
 */
@Injectable()
export class MonitoredQueuesProvider implements OnApplicationShutdown {
  private handles: Queue[] | null = null;
  private connection: Redis | null = null;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Jobs by queue and state (`waiting` is BullMQ's wait list plus paused). */
  async depths(): Promise<Map<QueueName, QueueDepths>> {
    const names = Object.values(QueueName);
    const pipeline = this.redis.pipeline();
    for (const name of names) {
      for (const s of LIST_STATES) pipeline.llen(`${QUEUE_PREFIX}:${name}:${s}`);
      for (const s of ZSET_STATES) pipeline.zcard(`${QUEUE_PREFIX}:${name}:${s}`);
    }
    const results = (await pipeline.exec()) ?? [];
    const per = LIST_STATES.length + ZSET_STATES.length;
    const out = new Map<QueueName, QueueDepths>();
    names.forEach((name, i) => {
      const values = results.slice(i * per, (i + 1) * per).map(([err, n]) => {
        if (err) throw err;
        return Number(n);
      });
      const [wait, paused, active, delayed, prioritized, waitingChildren, failed, completed] = values;
      out.set(name, {
        waiting: wait + paused,
        active,
        delayed,
        prioritized,
        'waiting-children': waitingChildren,
        failed,
        completed,
      });
    });
    return out;
  }

  /** BullMQ handles on every queue, for the dashboard; made on first use. */
  async queues(): Promise<Queue[]> {
    if (this.handles) return this.handles;
    const { Queue } = await import('bullmq');
    const connection = createRedis(this.config.redis, {
      maxRetriesPerRequest: 1,
      // A Redis that hangs instead of refusing keeps the connection ready: its reads fail (a 503) rather than
      // holding the dashboard's requests for as long as it hangs.
      commandTimeout: SHARED_COMMAND_TIMEOUT_MS,
      connectionName: 'webhook-secrets:dashboard',
    });
    connection.on('error', () => undefined);
    this.connection = connection;
    this.handles = Object.values(QueueName).map(
      (name) => new Queue(name, { connection, prefix: QUEUE_PREFIX }),
    );
    return this.handles;
  }

  /**
   * Resolves once the dashboard's connection is ready, or rejects with "Redis is unavailable" after `waitMs` (or at
   * once while it reconnects), as the delivery queue does: a request right after boot waits a moment for it.
   */
  async dashboardReady(waitMs = 2000): Promise<void> {
    const [queue] = await this.queues(); // one connection for every handle
    await queueReady(queue, waitMs, 'the queue dashboard');
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.handles) return;
    await Promise.allSettled(this.handles.map((q) => q.close()));
    this.connection?.disconnect();
  }
}
