import { Inject, Injectable, Logger } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { APP_CONFIG, type AppConfig } from '@app/config';
import type Redis from 'ioredis';
import { Clock, rejectedEventsStream } from '@app/domain';
import { DELIVERY_STATUSES, Database } from '@app/persistence';
import { REDIS, withTimeout } from '@app/queue';
import { MonitoredQueuesProvider } from './monitored-queues.provider';
import { CONNECTION_ROUTE } from './request-log';
import { SharedHistoryCounts, type HistoryCounts } from './shared-history.counts';

// Scrapes from several Prometheus replicas within this window share one round of SQL and Redis reads.
const SCRAPE_CACHE_MS = 2000;
/** How long the counts over the retained history (rotations, deliveries) are reused. */
const HISTORY_COUNTS_EVERY_MS = 60_000;
/** Longest a scrape waits for those counts (less when DATABASE_STATEMENT_TIMEOUT_MS is lower). */
const HISTORY_COUNTS_TIMEOUT_MS = 5000;
/** After those counts failed, how long scrapes go without them before the next try. */
const HISTORY_COUNTS_RETRY_MS = 10_000;
/**
 * Longest a scrape waits for the outbox backlog (a partial index: milliseconds when Postgres answers). A Postgres
 * that hangs is otherwise waited for until the connection's answer deadline (the statement timeout plus up to
 * 5 s, 20 s by default), past Prometheus' scrape timeout (10 s by default): the whole scrape would be lost,
 * `metrics_source_up` and the HTTP series with it, just when they matter.
 */
const BACKLOG_WAIT_MS = 5000;

/**
 * What became of a request's Idempotency-Key (see IdempotencyService): `first`, it claimed the key and ran;
 * `taken_over`, of those, one whose claim a retry took over, rolled back; `replayed`; `replay_refused`, a first
 * response no longer given out (its webhook deleted, its secret retired); `reused`, another request's key;
 * `in_progress`, busy.
 */
const IDEMPOTENT_OUTCOMES = [
  'first',
  'taken_over',
  'replayed',
  'replay_refused',
  'reused',
  'in_progress',
] as const;
export type IdempotentOutcome = (typeof IDEMPOTENT_OUTCOMES)[number];
const SCRAPE_SOURCES = ['postgres', 'redis'] as const;

/**
 * The Prometheus registry of the API. Per-process series (HTTP traffic, process metrics) are counted here;
 * cross-process facts (rotations, the audit outbox, queues, deliveries) are read at scrape time from
 * Postgres and Redis, because the worker that produces most of them has no HTTP port.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly logger = new Logger(MetricsService.name);
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly latency: Histogram<'method' | 'route' | 'status'>;
  private readonly idempotent: Counter<'outcome'>;
  private readonly rotations: Gauge<'trigger'>;
  private readonly outboxPending: Gauge;
  private readonly relayLag: Gauge;
  private readonly queueJobs: Gauge<'queue' | 'state'>;
  private readonly deliveries: Gauge<'status'>;
  private readonly eventsRejected: Gauge;
  private readonly lastRejectedAt: Gauge;
  private readonly scrapeErrors: Counter<'source'>;
  private readonly sourceUp: Gauge<'source'>;
  private lastRefresh = 0;
  private historyCounts: HistoryCounts | undefined;
  private readonly sharedHistory: SharedHistoryCounts;
  private historyFailedAt = -Infinity;
  private readonly historyTimeoutMs: number;
  private refreshing: Promise<void> | null = null;
  private readonly rejectedStream: string;

  constructor(
    private readonly db: Database,
    private readonly monitored: MonitoredQueuesProvider,
    private readonly clock: Clock,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.rejectedStream = rejectedEventsStream(config.events.stream);
    const limit = config.database.statementTimeoutMs;
    this.historyTimeoutMs =
      limit > 0 ? Math.min(limit, HISTORY_COUNTS_TIMEOUT_MS) : HISTORY_COUNTS_TIMEOUT_MS;
    this.sharedHistory = new SharedHistoryCounts(
      redis,
      config.database.url,
      () => this.db.repos.metrics.historyCounts(this.historyTimeoutMs),
      clock,
      {
        everyMs: HISTORY_COUNTS_EVERY_MS,
        retryMs: HISTORY_COUNTS_RETRY_MS,
        // The wait for a pool connection, then two counting statements, each cut off at historyTimeoutMs.
        countingMs: 2 * this.historyTimeoutMs + 5000,
      },
    );
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.idempotent = new Counter({
      name: 'http_idempotent_requests_total',
      help: 'Requests with an Idempotency-Key, by outcome: first (claimed the key and ran), taken_over (of the first ones, claim taken over by a retry: rolled back, 409), replayed, replay_refused (404 or 409: the first response is no longer given out), reused (another request, 409), in_progress (409, busy)',
      labelNames: ['outcome'],
      registers,
    });
    this.rotations = new Gauge({
      name: 'webhook_secret_rotations',
      help: 'Secret rotations in the retained audit history, by trigger (manual, scheduled); use delta()',
      labelNames: ['trigger'],
      registers,
    });
    this.outboxPending = new Gauge({
      name: 'audit_outbox_pending',
      help: 'Audit events committed but not yet relayed to the stream',
      registers,
    });
    this.relayLag = new Gauge({
      name: 'audit_relay_lag_seconds',
      help: 'Age of the oldest unrelayed audit event (0 when the outbox is empty)',
      registers,
    });
    this.queueJobs = new Gauge({
      name: 'queue_jobs',
      help: 'BullMQ jobs by queue and state',
      labelNames: ['queue', 'state'],
      registers,
    });
    this.deliveries = new Gauge({
      name: 'webhook_deliveries',
      help: 'Delivery rows in the retained log, by status (pending, succeeded, failed, dead)',
      labelNames: ['status'],
      registers,
    });
    this.eventsRejected = new Gauge({
      name: 'published_events_rejected',
      help: 'Entries of EVENTS_STREAM that were not events, kept in <EVENTS_STREAM>:rejected (about the last 1,000)',
      registers,
    });
    this.lastRejectedAt = new Gauge({
      name: 'published_events_last_rejected_timestamp_seconds',
      help: 'When the newest entry of <EVENTS_STREAM>:rejected was set aside (Unix seconds); no sample when none',
      registers,
    });
    this.sourceUp = new Gauge({
      name: 'metrics_source_up',
      help: 'Whether the last scrape-time read of a source (postgres, redis) worked; while 0, its series have no samples',
      labelNames: ['source'],
      registers,
    });
    this.scrapeErrors = new Counter({
      name: 'metrics_scrape_errors_total',
      help: 'Scrape-time reads that failed, by source (postgres, redis)',
      labelNames: ['source'],
      registers,
    });
    // Every label of the two counters has a sample from the start, 0 included: an alert on increase() or rate()
    // then sees the first failure, which it would miss on a series that appears only with it.
    for (const outcome of IDEMPOTENT_OUTCOMES) this.idempotent.inc({ outcome }, 0);
    for (const source of SCRAPE_SOURCES) this.scrapeErrors.inc({ source }, 0);
  }

  /** Counts one finished HTTP request; `route` is the template (`/v1/webhooks/:id`), never the raw path. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.requests.inc(labels);
    this.latency.observe(labels, seconds);
  }

  /**
   * Counts one answer the HTTP server gave before routing (see ConnectionAnswer), as a request of the route
   * `(connection)`. No latency is observed: the server does not time a request it could not read.
   */
  countConnectionAnswer(method: string | undefined, status: number): void {
    this.requests.inc({ method: method ?? 'unknown', route: CONNECTION_ROUTE, status: String(status) });
  }

  /** One request with an Idempotency-Key, by what became of its key. */
  countIdempotent(outcome: IdempotentOutcome): void {
    this.idempotent.inc({ outcome });
  }

  /** The exposition text, after refreshing the scrape-time series. */
  async render(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async refresh(): Promise<void> {
    if (this.clock.now().getTime() - this.lastRefresh < SCRAPE_CACHE_MS) return;
    this.refreshing ??= Promise.all([this.readDatabase(), this.readQueues()]).then(() => {
      this.lastRefresh = this.clock.now().getTime();
      this.refreshing = null;
    });
    await this.refreshing;
  }

  private async readDatabase(): Promise<void> {
    const m = this.db.repos.metrics;
    // The outbox backlog is fresh on every scrape (it feeds the relay-lag alert). The two counts over the
    // retained history scan it (up to a year of rotations, a week of deliveries): they are read at most once a
    // minute by one replica for all (SharedHistoryCounts), each counting statement is cut off at
    // HISTORY_COUNTS_TIMEOUT_MS, and once they failed here (a history too large for that) scrapes go without them
    // for a while, those two series without samples, Postgres still up.
    const now = this.clock.now().getTime();
    const fresh =
      this.historyCounts && now - this.historyCounts.at < HISTORY_COUNTS_EVERY_MS
        ? this.historyCounts
        : undefined;
    const skip = fresh === undefined && now - this.historyFailedAt < HISTORY_COUNTS_RETRY_MS;
    const backlogRead = withTimeout(
      m.outboxBacklog(),
      BACKLOG_WAIT_MS,
      () => new Error(`no answer within ${BACKLOG_WAIT_MS} ms`),
    );
    // Settled from the start: a scrape that does not wait for it (below) leaves no rejection unhandled.
    const historyRead = Promise.allSettled([skip ? undefined : (fresh ?? this.sharedHistory.read())]);
    const [backlog] = await Promise.allSettled([backlogRead]);
    if (backlog.status === 'rejected') {
      // Postgres does not answer: the scrape goes without the counts too rather than wait for them.
      // No value rather than a stale or made-up one (a 0 lag would hide the relay-lag alert); the gauges have
      // samples again after the next read that works.
      this.historyCounts = undefined;
      this.outboxPending.remove();
      this.relayLag.remove();
      this.rotations.reset();
      this.deliveries.reset();
      this.sourceUp.set({ source: 'postgres' }, 0);
      this.scrapeErrors.inc({ source: 'postgres' });
      this.logger.warn(`metrics: cannot read Postgres: ${(backlog.reason as Error).message}`);
      return;
    }
    this.outboxPending.set(backlog.value.pending);
    this.relayLag.set(
      backlog.value.oldestOccurredAt
        ? Math.max(0, (this.clock.now().getTime() - backlog.value.oldestOccurredAt.getTime()) / 1000)
        : 0,
    );
    this.sourceUp.set({ source: 'postgres' }, 1);
    const [history] = await historyRead;
    this.rotations.reset();
    this.deliveries.reset();
    if (history.status === 'rejected') {
      this.historyCounts = undefined;
      this.historyFailedAt = this.clock.now().getTime();
      this.scrapeErrors.inc({ source: 'postgres' });
      this.logger.warn(`metrics: cannot count the retained history: ${(history.reason as Error).message}`);
      return;
    }
    if (history.value === undefined) return;
    // Never older counts than those already reported (a replica that counted alone while Redis was away, then
    // reads what another replica stored before): the gauges would step back.
    if (!this.historyCounts || history.value.at >= this.historyCounts.at) this.historyCounts = history.value;
    const counts = this.historyCounts;
    for (const trigger of ['manual', 'scheduled']) this.rotations.set({ trigger }, 0);
    for (const [trigger, n] of counts.rotations) this.rotations.set({ trigger }, n);
    if (counts.deliveries) {
      for (const status of DELIVERY_STATUSES) this.deliveries.set({ status }, 0);
      for (const [status, n] of counts.deliveries) this.deliveries.set({ status }, n);
    }
  }

  private async readQueues(): Promise<void> {
    try {
      for (const [queue, byState] of await this.monitored.depths()) {
        for (const [state, n] of Object.entries(byState)) this.queueJobs.set({ queue, state }, n);
      }
      await this.readRejectedEvents();
      this.sourceUp.set({ source: 'redis' }, 1);
    } catch (e) {
      this.queueJobs.reset();
      this.eventsRejected.remove();
      this.lastRejectedAt.remove();
      this.sourceUp.set({ source: 'redis' }, 0);
      this.scrapeErrors.inc({ source: 'redis' });
      this.logger.warn(`metrics: cannot read Redis (queue depths, rejected events): ${(e as Error).message}`);
    }
  }

  /** How many entries the rejected stream keeps, and when the newest was set aside (one key: one slot). */
  private async readRejectedEvents(): Promise<void> {
    const [[lengthError, length], [newestError, newest]] = ((await this.redis
      .pipeline()
      .xlen(this.rejectedStream)
      .xrevrange(this.rejectedStream, '+', '-', 'COUNT', 1)
      .exec()) ?? []) as [Error | null, unknown][];
    if (lengthError) throw lengthError;
    if (newestError) throw newestError;
    this.eventsRejected.set(Number(length));
    const [entry] = newest as [string, string[]][];
    if (entry) this.lastRejectedAt.set(Number(entry[0].split('-')[0]) / 1000);
    else this.lastRejectedAt.remove();
  }
}
