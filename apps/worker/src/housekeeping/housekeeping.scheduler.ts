import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { JobName, QueueName } from '@app/queue';
import { logQueueError } from '../scheduling/queue-worker.host';
import { RecurringJobsRegistrar, type RecurringJob } from '../scheduling/recurring-jobs.registrar';

/** How often expired previous secrets are looked for. */
const EXPIRE_EVERY_MS = 60_000;
/** How often old deliveries are purged and stranded ones queued again. */
const DELIVERIES_EVERY_MS = 60_000;

/** Keeps the recurring housekeeping jobs registered. */
@Injectable()
export class HousekeepingScheduler extends RecurringJobsRegistrar {
  constructor(@InjectQueue(QueueName.Housekeeping) private readonly queue: Queue) {
    super();
    this.queue.on('error', (e: Error) => logQueueError(this.logger, 'housekeeping queue', e));
  }

  protected jobs(): RecurringJob[] {
    const opts = { removeOnComplete: 100, removeOnFail: 500 };
    return [
      { queue: this.queue, name: JobName.SecretsExpire, repeat: { every: EXPIRE_EVERY_MS }, opts },
      { queue: this.queue, name: JobName.DeliveriesPurge, repeat: { every: DELIVERIES_EVERY_MS }, opts },
    ];
  }
}
