import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { JobName, QueueName } from '@app/queue';
import { logQueueError } from '../scheduling/queue-worker.host';
import { RecurringJobsRegistrar, type RecurringJob } from '../scheduling/recurring-jobs.registrar';

/**
 * Keeps the recurring rotation sweep registered, every ROTATION_SWEEP_EVERY_MS. Overlapping sweeps would be
 * harmless anyway (they claim disjoint batches).
 */
@Injectable()
export class RotationScheduler extends RecurringJobsRegistrar {
  constructor(
    @InjectQueue(QueueName.Rotation) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super();
    this.queue.on('error', (e: Error) => logQueueError(this.logger, 'rotation queue', e));
  }

  protected jobs(): RecurringJob[] {
    return [
      {
        queue: this.queue,
        name: JobName.RotationSweep,
        repeat: { every: this.config.rotation.sweepEveryMs },
        opts: { removeOnComplete: 100, removeOnFail: 500 },
      },
    ];
  }
}
