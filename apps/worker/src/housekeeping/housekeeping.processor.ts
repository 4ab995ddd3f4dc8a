import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { Clock, SecretsService } from '@app/domain';
import { Database } from '@app/persistence';
import { JobName, QueueName } from '@app/queue';

const EXPIRE_BATCH = 500;
const PURGE_BATCH = 5000;

/** Housekeeping jobs: destroy expired previous secrets (and, as features arrive, purge old rows). */
@Processor(QueueName.Housekeeping)
export class HousekeepingProcessor extends WorkerHost {
  private readonly logger = new Logger(HousekeepingProcessor.name);

  constructor(
    private readonly secrets: SecretsService,
    private readonly db: Database,
    private readonly clock: Clock,
  ) {
    super();
  }

  async process(job: Job): Promise<{ destroyed: number; idempotencyKeysPurged?: number }> {
    const name = job.name as JobName;
    switch (name) {
      case JobName.SecretsExpire:
        // Expired Idempotency-Key responses hold (encrypted) secrets too: they go on the same beat.
        return {
          destroyed: await this.expireSecrets(),
          idempotencyKeysPurged: await this.purgeIdempotencyKeys(),
        };
      case JobName.RotationSweep:
      case JobName.SecretRotate:
      case JobName.AuditRelay:
      case JobName.DeliveryAttempt:
      case JobName.DeliveriesPurge:
      case JobName.AuditPurge:
        throw new Error(`job ${name} does not belong to the ${QueueName.Housekeeping} queue`);
    }
  }

  /** Stored Idempotency-Key responses past their 24 hours, in batches. */
  private async purgeIdempotencyKeys(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.db.repos.idempotencyKeys.purgeExpired(this.clock.now(), PURGE_BATCH);
      total += n;
      if (n < PURGE_BATCH) break;
    }
    if (total > 0) this.logger.log({ purged: total }, 'expired idempotency keys purged');
    return total;
  }

  /** Batches until nothing due is left, so a backlog clears in one run without holding all rows at once. */
  private async expireSecrets(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.secrets.expireDue(this.db, this.clock.now(), EXPIRE_BATCH);
      total += n;
      if (n < EXPIRE_BATCH) break;
    }
    if (total > 0) this.logger.log({ destroyed: total }, 'expired previous secrets destroyed');
    return total;
  }
}
