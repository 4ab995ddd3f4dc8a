import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import type Redis from 'ioredis';
import { AuditStreamPublisher, auditRelayChannel, toAuditEvent } from '@app/audit';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Clock } from '@app/domain';
import { Database } from '@app/persistence';
import { createRedis } from '@app/queue';

/** Events per relay transaction: one SELECT, one pipelined round of XADDs, one UPDATE. */
export const RELAY_BATCH = 500;
/**
 * A nudge that finds the relay idle waits this long before the run starts, so that a burst of commits is
 * published by one transaction instead of one each (a busy relay coalesces by itself: nudges during a run
 * make it go round once more). A few milliseconds of lag buy a large cut in Postgres round trips.
 */
const WAKE_COALESCE_MS = 10;
/** After a failed run (Redis or Postgres away), try again this soon, on top of the 1 s poller. */
const RETRY_AFTER_MS = 1000;

/**
 * The outbox relay: publishes unpublished `audit_events` rows to the audit stream in `seq` order, then marks
 * them published, one transaction per batch.
 *
 * - Ordering and no duplicates across workers: each batch holds the relay lane (a transaction-scoped Postgres
 *   advisory lock); a worker that cannot take it skips, since the holder is publishing anyway. `seq` order keeps
 *   each webhook's events in order, because changes to one webhook are serialised by its row lock, so a later
 *   change gets a higher `seq` and commits after the earlier one is visible.
 * - At least once: the rows are marked in the same transaction that read them, after the XADDs. A crash in
 *   between rolls the marking back and the batch is published again, with the same event ids.
 * - Low lag: woken by the API's after-commit nudge (Redis pub/sub), by the subscriber connection coming back
 *   after an outage, and by the 1 s poller job, so a lost nudge delays an event by a second at most.
 */
@Injectable()
export class AuditRelayService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(AuditRelayService.name);
  private running: Promise<number> | null = null;
  private again = false;
  private closed = false;
  private failing = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private wakeups: Redis | null = null;

  constructor(
    private readonly db: Database,
    private readonly publisher: AuditStreamPublisher,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    // A connection of its own: a subscribed connection can do nothing else. Its offline queue is on so the
    // SUBSCRIBE waits for the connection, and ioredis re-subscribes by itself after every reconnect.
    // Made from the configuration, not duplicate(): a Cluster client's duplicate() takes other arguments.
    const wakeups = createRedis(this.config.redis, {
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      connectionName: 'webhook-secrets:audit-relay',
    });
    wakeups.on('error', () => undefined);
    wakeups.on('message', () => this.wake());
    // Redis is back after an outage: drain the backlog now rather than at the next poll.
    wakeups.on('ready', () => this.wake());
    wakeups.subscribe(auditRelayChannel(this.config.audit.stream)).catch(() => undefined);
    this.wakeups = wakeups;
    this.wake();
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeups?.disconnect();
    await this.running?.catch(() => undefined);
  }

  /** Asks for a run without waiting for it. */
  wake(): void {
    void this.drain(WAKE_COALESCE_MS);
  }

  /**
   * Publishes what is unpublished, batch after batch, until nothing is left (or another worker holds the
   * lane). A call during a run makes that run go round once more instead of starting a second one. Never
   * rejects; resolves with the number of events this run published. `delayMs` lets a burst gather first.
   */
  drain(delayMs = 0): Promise<number> {
    if (this.closed) return Promise.resolve(0);
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = this.loop(delayMs).finally(() => {
      this.running = null;
    });
    this.running = run;
    return run;
  }

  private async loop(delayMs: number): Promise<number> {
    let total = 0;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    try {
      do {
        this.again = false;
        for (;;) {
          const n = await this.relayBatch();
          if (n === null) break;
          total += n;
          if (n < RELAY_BATCH || this.closed) break;
        }
      } while (this.again && !this.closed);
      if (this.failing) this.logger.log('audit relay recovered');
      this.failing = false;
    } catch (e) {
      // Events stay in the outbox; nothing is lost. Log once per outage, not once per attempt.
      if (!this.failing) {
        this.logger.warn(`audit relay paused: ${e instanceof Error ? e.message : String(e)}`);
      }
      this.failing = true;
      this.scheduleRetry();
    }
    return total;
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.wake();
    }, RETRY_AFTER_MS);
    this.retryTimer.unref();
  }

  /** One batch in one transaction; null when another relay holds the lane. */
  private relayBatch(): Promise<number | null> {
    return this.db.transaction(async (tx) => {
      if (!(await tx.auditEvents.tryLockRelayLane())) return null;
      const rows = await tx.auditEvents.unpublished(RELAY_BATCH);
      if (rows.length === 0) return 0;
      await this.publisher.publish(rows.map((r) => toAuditEvent(r.event)));
      await tx.auditEvents.markPublished(
        rows.map((r) => r.seq),
        this.clock.now(),
      );
      return rows.length;
    });
  }
}
