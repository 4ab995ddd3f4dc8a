import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Clock, inBatches } from '@app/domain';
import { Database } from '@app/persistence';

/** Rows deleted per statement: short transactions, no long lock on a big table. */
export const PURGE_BATCH = 1000;
const DAY_MS = 86_400_000;

/** Audit retention: deletes published audit events older than `AUDIT_RETENTION_DAYS`. */
@Injectable()
export class AuditRetentionService {
  private readonly logger = new Logger(AuditRetentionService.name);

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Deletes in bounded batches until none is left; unpublished events are kept whatever their age. */
  async purge(stopping?: () => boolean): Promise<number> {
    const cutoff = new Date(this.clock.now().getTime() - this.config.audit.retentionDays * DAY_MS);
    const total = await inBatches(
      PURGE_BATCH,
      (limit) => this.db.repos.auditEvents.purgePublishedBefore(cutoff, limit),
      stopping,
    );
    if (total > 0) this.logger.log(`purged ${total} audit events older than ${cutoff.toISOString()}`);
    return total;
  }
}
