import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { JobName, QueueName } from '@app/queue';

/**
 * Registers the recurring rotation sweep, every ROTATION_SWEEP_EVERY_MS. `upsertJobScheduler` is idempotent:
 * every worker replica registers it at boot and there is still one schedule; overlapping sweeps would be
 * harmless anyway (they claim disjoint batches).
 */
@Injectable()
export class RotationScheduler implements OnApplicationBootstrap {
  constructor(
    @InjectQueue(QueueName.Rotation) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.queue.upsertJobScheduler(
      JobName.RotationSweep,
      { every: this.config.rotation.sweepEveryMs },
      { name: JobName.RotationSweep, data: {}, opts: { removeOnComplete: 100, removeOnFail: 500 } },
    );
  }
}
