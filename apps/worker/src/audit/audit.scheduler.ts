import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { JobName, QueueName } from '@app/queue';
import { logQueueError } from '../scheduling/queue-worker.host';
import { RecurringJobsRegistrar, type RecurringJob } from '../scheduling/recurring-jobs.registrar';

/** The relay's polling fallback: a lost wake-up nudge delays an event by this much at most. */
const RELAY_POLL_EVERY_MS = 1000;
/** Retention runs once a day, at a quiet hour (UTC). */
const AUDIT_PURGE_PATTERN = '17 3 * * *';

/** Keeps the recurring audit jobs registered: the relay's polling and the daily retention purge. */
@Injectable()
export class AuditScheduler extends RecurringJobsRegistrar {
  constructor(
    @InjectQueue(QueueName.Audit) private readonly audit: Queue,
    @InjectQueue(QueueName.Housekeeping) private readonly housekeeping: Queue,
  ) {
    super();
    this.audit.on('error', (e: Error) => logQueueError(this.logger, 'audit queue', e));
  }

  protected jobs(): RecurringJob[] {
    return [
      {
        queue: this.audit,
        name: JobName.AuditRelay,
        repeat: { every: RELAY_POLL_EVERY_MS },
        opts: { removeOnComplete: true, removeOnFail: 100 },
      },
      {
        queue: this.housekeeping,
        name: JobName.AuditPurge,
        repeat: { pattern: AUDIT_PURGE_PATTERN, tz: 'UTC' },
        opts: { removeOnComplete: 100, removeOnFail: 500 },
      },
    ];
  }
}
