import { Processor } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { JobName, QueueName } from '@app/queue';
import { QueueWorkerHost } from '../scheduling/queue-worker.host';
import { AuditRelayService } from './audit-relay.service';

/** The audit queue: the relay's polling fallback, in case a wake-up nudge was lost. */
@Processor(QueueName.Audit)
export class AuditRelayProcessor extends QueueWorkerHost {
  constructor(private readonly relay: AuditRelayService) {
    super();
  }

  async process(job: Job): Promise<{ published: number }> {
    const name = job.name as JobName;
    switch (name) {
      case JobName.AuditRelay:
        return { published: await this.relay.drain() };
      case JobName.RotationSweep:
      case JobName.SecretRotate:
      case JobName.DeliveryAttempt:
      case JobName.SecretsExpire:
      case JobName.DeliveriesPurge:
      case JobName.AuditPurge:
        throw new Error(`job ${name} does not belong to the ${QueueName.Audit} queue`);
    }
  }
}
