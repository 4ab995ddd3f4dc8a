import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { JobName, QueueName } from '@app/queue';

/** How often expired previous secrets are looked for. */
const EXPIRE_EVERY_MS = 60_000;
/** How often old deliveries are purged and stranded ones queued again. */
const DELIVERIES_EVERY_MS = 60_000;

/**
 * Registers the recurring housekeeping jobs. `upsertJobScheduler` is idempotent, so every worker replica
 * can call it at boot and there is still one schedule.
 */
@Injectable()
export class HousekeepingScheduler implements OnApplicationBootstrap {
  constructor(@InjectQueue(QueueName.Housekeeping) private readonly queue: Queue) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.queue.upsertJobScheduler(
      JobName.SecretsExpire,
      { every: EXPIRE_EVERY_MS },
      { name: JobName.SecretsExpire, data: {}, opts: { removeOnComplete: 100, removeOnFail: 500 } },
    );
    await this.queue.upsertJobScheduler(
      JobName.DeliveriesPurge,
      { every: DELIVERIES_EVERY_MS },
      { name: JobName.DeliveriesPurge, data: {}, opts: { removeOnComplete: 100, removeOnFail: 500 } },
    );
  }
}
