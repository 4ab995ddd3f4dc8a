import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { QUEUE_PREFIX, QueueName, redisOptionsFromUrl } from '@app/queue';

/**
 * Read-side handles on every BullMQ queue, for queue depths in /metrics and the Bull Board dashboard. The API
 * never adds or processes jobs through these. They share one lazy connection that fails fast while Redis is
 * away (a scrape then reports what it can instead of hanging).
 */
@Injectable()
export class MonitoredQueues implements OnApplicationShutdown {
  private readonly logger = new Logger(MonitoredQueues.name);
  private connection: Redis | null = null;
  private cached: Queue[] | null = null;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** One handle per {@link QueueName}, created on first use. */
  get queues(): Queue[] {
    if (this.cached) return this.cached;
    this.connection = new Redis({
      ...redisOptionsFromUrl(this.config.redis.url),
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      lazyConnect: true,
      connectionName: 'webhook-secrets:monitor',
    });
    this.connection.on('error', (e: Error) => this.logger.debug(`queue monitor connection: ${e.message}`));
    this.cached = Object.values(QueueName).map(
      (name) => new Queue(name, { connection: this.connection!, prefix: QUEUE_PREFIX }),
    );
    return this.cached;
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.cached) return;
    await Promise.allSettled(this.cached.map((q) => q.close()));
    this.connection?.disconnect();
  }
}
