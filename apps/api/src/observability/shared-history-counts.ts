import type Redis from 'ioredis';
import { createHash } from 'node:crypto';
import { withTimeout } from '@app/queue';

/** The counts over the retained history that /metrics reports, and when they were read. */
export interface HistoryCounts {
  at: number;
  rotations: Map<string, number>;
  deliveries: Map<string, number> | null;
}

/** What is kept in Redis: the last counts, or when the last count failed. */
type SharedRecord =
  | { at: number; rotations: [string, number][]; deliveries: [string, number][] | null }
  | { at: number; failed: true };

export interface SharedHistoryCountsOptions {
  /** Counts younger than this are used as they are. */
  everyMs: number;
  /** After a failed count, how long no replica counts again (scrapes go without the series meanwhile). */
  retryMs: number;
  /** How long one replica may take to count before another may try (the count's own time limit, and a margin). */
  countingMs: number;
}

/** The Redis key of the counts of one database (the lock is this key with `:counting`). */
export function sharedHistoryCountsKey(databaseUrl: string): string {
  return `metrics:history-counts:${createHash('sha256').update(databaseUrl).digest('hex').slice(0, 16)}`;
}

/**
 * Longest wait for each Redis step: a Redis that hangs must not add its command timeout to the scrape's wait for
 * the count itself (Prometheus gives a scrape 10 s by default).
 */
const REDIS_STEP_MS = 1000;

/** How long a record outlives its freshness, as a fallback for the replicas that wait for a new one. */
const KEEP_MS = 10 * 60_000;

/**
 * The counts over the retained history (rotations by trigger, deliveries by status), shared by every API
 * replica through Redis: each count scans up to a year of audit events and a week of deliveries, seconds of
 * Postgres at internet scale, and counted by every replica once a minute that cost grew with the number of
 * replicas. Now one replica counts (the one that takes the lock), stores the result beside it, and the others
 * read it; while it counts they use the previous counts. A failed count is shared as well, so the others do not
 * repeat it at once. Without Redis, or with no counts stored yet, a replica counts itself, as it did alone.
 *
 * The keys are named after the database (a hash of its URL), so deployments that share a Redis database do not
 * read each other's counts.
 */
export class SharedHistoryCounts {
  private readonly key: string;
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
    databaseUrl: string,
    private readonly count: () => Promise<Omit<HistoryCounts, 'at'>>,
    private readonly options: SharedHistoryCountsOptions,
  ) {
    this.key = sharedHistoryCountsKey(databaseUrl);
    this.lockKey = `${this.key}:counting`;
  }

  /**
   * The shared counts if fresh, else counts taken now (and shared); undefined while another replica counts and no
   * earlier counts are stored; rejects when the count failed (here, or in another replica within `retryMs`).
   */
  async read(): Promise<HistoryCounts | undefined> {
    let stored: SharedRecord | undefined;
    let mine: boolean;
    let shared = true;
    try {
      stored = parse(await this.step(this.redis.get(this.key)));
      if (stored && this.fresh(stored)) return counts(stored);
      mine =
        (await this.step(this.redis.set(this.lockKey, '1', 'PX', this.options.countingMs, 'NX'))) === 'OK';
    } catch {
      // Redis away: count here, as a replica on its own does, and keep the result (no waiting on Redis again).
      mine = true;
      shared = false;
    }
    // Another replica is counting: the previous counts meanwhile, if there are any.
    if (!mine) return stored && !('failed' in stored) ? counts(stored) : undefined;
    try {
      const result = { at: Date.now(), ...(await this.count()) };
      if (shared)
        await this.store({
          at: result.at,
          rotations: [...result.rotations],
          deliveries: result.deliveries ? [...result.deliveries] : null,
        });
      return result;
    } catch (e) {
      if (shared) await this.store({ at: Date.now(), failed: true });
      throw e;
    }
  }

  private step<T>(command: Promise<T>): Promise<T> {
    return withTimeout(command, REDIS_STEP_MS, () => new Error('Redis did not answer'));
  }

  private fresh(record: SharedRecord): boolean {
    const age = Date.now() - record.at;
    return age >= 0 && age < ('failed' in record ? this.options.retryMs : this.options.everyMs);
  }

  private async store(record: SharedRecord): Promise<void> {
    try {
      await this.step(this.redis.set(this.key, JSON.stringify(record), 'PX', KEEP_MS));
      await this.step(this.redis.del(this.lockKey));
    } catch {
      // Not shared this time: the others count themselves, or wait for the lock to expire.
    }
  }
}

function parse(raw: string | null): SharedRecord | undefined {
  if (!raw) return undefined;
  try {
    const record = JSON.parse(raw) as SharedRecord;
    return typeof record?.at === 'number' ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The counts of a record; a stored failure rejects, as the count did. */
function counts(record: SharedRecord): Promise<HistoryCounts> {
  if ('failed' in record)
    return Promise.reject(new Error('the last count over the retained history failed, in another replica'));
  return Promise.resolve({
    at: record.at,
    rotations: new Map(record.rotations),
    deliveries: record.deliveries ? new Map(record.deliveries) : null,
  });
}
