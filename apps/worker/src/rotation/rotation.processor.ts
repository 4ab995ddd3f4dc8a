import { Processor } from '@nestjs/bullmq';
import { Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { RotationSweepService, type SweepResult } from '@app/domain';
import { JobName, QueueName, type JobPayloads } from '@app/queue';
import { QueueWorkerHost } from '../scheduling/queue-worker.host';

/** Rotation jobs: the recurring sweep, and single idempotent rotations. */
@Processor(QueueName.Rotation)
export class RotationProcessor extends QueueWorkerHost {
  private readonly logger = new Logger(RotationProcessor.name);

  constructor(private readonly sweeper: RotationSweepService) {
    super();
  }

  async process(job: Job): Promise<SweepResult | { rotated: boolean }> {
    const name = job.name as JobName;
    switch (name) {
      case JobName.RotationSweep: {
        const result = await this.sweeper.sweep();
        if (result.rotated > 0 || result.notices > 0) this.logger.log(result, 'rotation sweep');
        return result;
      }
      case JobName.SecretRotate: {
        const data = job.data as JobPayloads[typeof JobName.SecretRotate];
        return { rotated: await this.sweeper.rotateIfDue(data.webhookId, new Date(data.dueAt)) };
      }
      case JobName.AuditRelay:
      case JobName.DeliveryAttempt:
      case JobName.SecretsExpire:
      case JobName.DeliveriesPurge:
      case JobName.AuditPurge:
        throw new Error(`job ${name} does not belong to the ${QueueName.Rotation} queue`);
    }
  }
}
