import { Processor } from '@nestjs/bullmq';
import { Inject, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import type { Job } from 'bullmq';
import type Redis from 'ioredis';
import { removeAbandonedTailGroups } from '@app/audit';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Clock, DeliveriesService, SecretsService, inBatches } from '@app/domain';
import { Database } from '@app/persistence';
import { JobName, QueueName, REDIS } from '@app/queue';
import { QueueWorkerHost } from '../scheduling/queue-worker.host';
import { AuditRetentionService } from '../audit/audit-retention.service';

const EXPIRE_BATCH = 500;
const PURGE_BATCH = 5000;

/**
 * Housekeeping jobs: expired previous secrets and Idempotency-Key responses, the delivery log's retention and its
 * lost attempts, audit retention and the groups killed `audit tail` runs left behind.
 */
@Processor(QueueName.Housekeeping)
export class HousekeepingProcessor extends QueueWorkerHost implements BeforeApplicationShutdown {
  private readonly logger = new Logger(HousekeepingProcessor.name);
  /**
   * Set at shutdown: the batched loops start no further batch (the worker waits for running jobs, within the
   * process's deadline), and the next run does the rest.
   */
  private closing = false;
  private readonly stopping = () => this.closing;

  constructor(
    private readonly secrets: SecretsService,
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly deliveries: DeliveriesService,
    private readonly auditRetention: AuditRetentionService,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super();
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  async process(job: Job): Promise<Record<string, number>> {
    const name = job.name as JobName;
    switch (name) {
      case JobName.SecretsExpire:
        // Expired Idempotency-Key responses hold (encrypted) secrets too: they go on the same beat.
        return {
          destroyed: await this.expireSecrets(),
          idempotencyKeysPurged: await this.purgeIdempotencyKeys(),
        };
      case JobName.DeliveriesPurge:
        return this.maintainDeliveries();
      case JobName.AuditPurge:
        return {
          purged: await this.auditRetention.purge(this.stopping),
          abandonedTailGroups: await this.removeAbandonedTailGroups(),
        };
      case JobName.RotationSweep:
      case JobName.SecretRotate:
      case JobName.AuditRelay:
      case JobName.DeliveryAttempt:
        throw new Error(`job ${name} does not belong to the ${QueueName.Housekeeping} queue`);
    }
  }

  /**
   * Delivery log retention (7 days), then the deleted webhooks that were kept only for their delivery log, and
   * the safety net for deliveries whose queued attempt was lost: all follow the delivery log, so they share one
   * recurring job.
   */
  private async maintainDeliveries(): Promise<{ purged: number; webhooksPurged: number; rescued: number }> {
    const purged = await this.deliveries.purgeExpired(undefined, this.stopping);
    const webhooksPurged = await this.deliveries.purgeDeletedWebhooks(undefined, this.stopping);
    const rescued = await this.deliveries.rescueStranded(undefined, this.stopping);
    if (purged > 0) this.logger.log({ purged }, 'deliveries past retention purged');
    if (webhooksPurged > 0)
      this.logger.log({ purged: webhooksPurged }, 'deleted webhooks without a delivery log left purged');
    if (rescued > 0) this.logger.warn({ rescued }, 'stranded deliveries queued again');
    return { purged, webhooksPurged, rescued };
  }

  /**
   * The throwaway consumer groups that killed `audit tail` runs left on the audit stream. A Redis that refuses or
   * does not answer fails neither the job nor the purge done before it: the groups wait for the next day.
   */
  private async removeAbandonedTailGroups(): Promise<number> {
    try {
      const removed = await removeAbandonedTailGroups(this.redis, this.config.audit.stream);
      if (removed > 0) this.logger.log({ removed }, 'abandoned audit tail groups removed');
      return removed;
    } catch (e) {
      this.logger.warn(
        { err: e instanceof Error ? e.message : String(e) },
        'abandoned audit tail groups not removed this time',
      );
      return 0;
    }
  }

  /** Stored Idempotency-Key responses past their 24 hours, in batches. */
  private async purgeIdempotencyKeys(): Promise<number> {
    const total = await inBatches(
      PURGE_BATCH,
      (limit) => this.db.repos.idempotencyKeys.purgeExpired(this.clock.now(), limit),
      this.stopping,
    );
    if (total > 0) this.logger.log({ purged: total }, 'expired idempotency keys purged');
    return total;
  }

  /** Batches until nothing due is left, so a backlog clears in one run without holding all rows at once. */
  private async expireSecrets(): Promise<number> {
    const total = await inBatches(
      EXPIRE_BATCH,
      (limit) => this.secrets.expireDue(this.db, this.clock.now(), limit),
      this.stopping,
    );
    if (total > 0) this.logger.log({ destroyed: total }, 'expired previous secrets destroyed');
    return total;
  }
}
