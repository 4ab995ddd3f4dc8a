import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { JobName, QueueName } from '@app/queue';

/** The relay's polling fallback: a lost wake-up nudge delays an event by this much at most. */
const RELAY_POLL_EVERY_MS = 1000;
/** Retention runs once a day, at a quiet hour (UTC). */
const AUDIT_PURGE_PATTERN = '17 3 * * *';

/**
 * Registers the recurring audit jobs. `upsertJobScheduler` is idempotent, so every worker replica can call
 * it at boot and there is still one schedule of each.
 */
@Injectable()
export class AuditScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(AuditScheduler.name);

  constructor(
    @InjectQueue(QueueName.Audit) private readonly audit: Queue,
    @InjectQueue(QueueName.Housekeeping) private readonly housekeeping: Queue,
  ) {
    // Without a listener BullMQ prints every reconnect failure with console.error. The relay already reports an
    // outage once, at warn level; the queue's own connection errors are only worth a debug line.
    this.audit.on('error', (e: Error) => this.logger.debug(`audit queue connection: ${e.message}`));
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.audit.upsertJobScheduler(
      JobName.AuditRelay,
      { every: RELAY_POLL_EVERY_MS },
      { name: JobName.AuditRelay, data: {}, opts: { removeOnComplete: true, removeOnFail: 100 } },
    );
    await this.housekeeping.upsertJobScheduler(
      JobName.AuditPurge,
      { pattern: AUDIT_PURGE_PATTERN, tz: 'UTC' },
      { name: JobName.AuditPurge, data: {}, opts: { removeOnComplete: 100, removeOnFail: 500 } },
    );
  }
}
