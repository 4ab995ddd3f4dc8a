import { Processor } from '@nestjs/bullmq';
import { Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import type { Job } from 'bullmq';
import { RotationSweepService, SWEEP_BATCH, type SweepResult } from '@app/domain';
import { JobName, QueueName, type JobPayloads } from '@app/queue';
import { QueueWorkerHost } from '../scheduling/queue-worker.host';

/** Rotation jobs: the recurring sweep, and single idempotent rotations. */
@Processor(QueueName.Rotation)
export class RotationProcessor extends QueueWorkerHost implements BeforeApplicationShutdown {
  private readonly logger = new Logger(RotationProcessor.name);
  private closing = false;

  constructor(private readonly sweeper: RotationSweepService) {
    super();
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  async process(job: Job): Promise<SweepResult | { rotated: boolean }> {
    const name = job.name as JobName;
    switch (name) {
      case JobName.RotationSweep: {
        // At shutdown the sweep ends after its batches in flight (the worker waits for running jobs, within the
        // process's deadline); what is still due goes to the next sweep.
        const result = await this.sweeper.sweep(SWEEP_BATCH, () => this.closing);
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
