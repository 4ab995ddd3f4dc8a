import type Redis from 'ioredis';
import { createHash, randomUUID } from 'node:crypto';
import type { Clock } from '@app/domain';
import { withTimeout } from '@app/queue';

/** The counts over the retained history that /metrics reports, and when they were taken (this process's clock). */
export interface HistoryCounts {
  at: number;
  rotations: Map<string, number>;
  deliveries: Map<string, number> | null;
}

/** The counts as stored in Redis; their age is told by the key's remaining time to live (Redis's clock). */
interface SharedRecord {
  rotations: [string, number][];
  deliveries: [string, number][] | null;
}

export interface SharedHistoryCountsOptions {
  /** Counts younger than this are used as they are. */
  everyMs: number;
  /** After a failed count, how long no other replica counts (it reports the previous counts meanwhile). */
  retryMs: number;
  /** Longest one count may take: how long its lock holds (the pool wait and every statement of the count). */
  countingMs: number;
}

/** How long stored counts are kept, as a fallback for replicas that wait for new ones. */
const KEEP_MS = 10 * 60_000;
/**
 * Longest wait for each Redis round trip: a Redis that hangs must not add the client's command timeout to the
 * scrape's wait for the count itself; long enough that an event loop stalled for a moment is not taken for it.
 */
const REDIS_STEP_MS = 2500;

/** Stores `ARGV[2]` at KEYS[1] for ARGV[3] ms and releases the lock KEYS[2], only if the lock is still ARGV[1]. */
const PUBLISH_IF_HOLDER = `
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0`;

/**
 * The Redis key of the counts of one database: named after its URL without the password (wherever the URL carries
 * it), hash-tagged so that the counts, their lock and the failure mark share one Cluster slot.
 */
export function sharedHistoryCountsKey(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  u.password = '';
  u.searchParams.delete('password');
  return `metrics:{history-counts:${createHash('sha256').update(u.href).digest('hex').slice(0, 16)}}`;
}

/**
 * The counts over the retained history (rotations by trigger, deliveries by status), shared by every API
 * replica through Redis: each count scans up to a year of audit events and a week of deliveries, seconds of
 * Postgres at internet scale, and counted by every replica once a minute that cost grew with the number of
 * replicas. Now one replica counts (the one that takes the lock), stores the result, and the others read it;
 * while it counts they use the previous counts. A count that failed is marked for `retryMs`, so the others do not
 * repeat it at once (they report the previous counts; the failure is reported by the replica it happened in).
 * Without Redis, a replica counts itself, as it did alone, and keeps the result to itself.
 *
 * Ages come from Redis (the key's time to live), never from comparing the clocks of two replicas. A count whose
 * lock ran out before it finished is not stored: another replica has started a newer one.
 */
export class SharedHistoryCounts {
  private readonly key: string;
  private readonly lockKey: string;
  private readonly failedKey: string;

  constructor(
    private readonly redis: Redis,
    databaseUrl: string,
    private readonly count: () => Promise<Omit<HistoryCounts, 'at'>>,
    private readonly clock: Clock,
    private readonly options: SharedHistoryCountsOptions,
  ) {
    this.key = sharedHistoryCountsKey(databaseUrl);
    this.lockKey = `${this.key}:counting`;
    this.failedKey = `${this.key}:failed`;
  }

  /**
   * The shared counts if fresh, else counts taken now (and shared); while another replica counts, or just failed
   * to, the previous counts (undefined when none are stored); rejects when the count taken here failed.
   */
  async read(): Promise<HistoryCounts | undefined> {
    let stored: HistoryCounts | undefined;
    let token: string | undefined;
    try {
      const replies: [Error | null, unknown][] | null = await this.step(
        this.redis.multi().get(this.key).pttl(this.key).exists(this.failedKey).exec(),
      );
      for (const [error] of replies ?? []) if (error) throw error;
      const [[, raw], [, ttl], [, failed]] = replies!;
      stored = parse(raw, Number(ttl), this.clock.now().getTime());
      if (stored && this.clock.now().getTime() - stored.at < this.options.everyMs) return stored;
      if (Number(failed) > 0) return stored;
      const candidate = randomUUID();
      const taken = await this.step(
        this.redis.set(this.lockKey, candidate, 'PX', this.options.countingMs, 'NX'),
      );
      // Another replica is counting: the previous counts meanwhile, if there are any.
      if (taken !== 'OK') return stored;
      token = candidate;
    } catch {
      // Redis away: count here, as a replica on its own does, and keep the result (no waiting on Redis again).
    }
    try {
      const result = { at: this.clock.now().getTime(), ...(await this.count()) };
      if (token !== undefined)
        await this.publish(
          token,
          this.key,
          JSON.stringify({
            rotations: [...result.rotations],
            deliveries: result.deliveries ? [...result.deliveries] : null,
          } satisfies SharedRecord),
          KEEP_MS,
        );
      return result;
    } catch (e) {
      if (token !== undefined) await this.publish(token, this.failedKey, '1', this.options.retryMs);
      throw e;
    }
  }

  private async publish(token: string, key: string, value: string, ttlMs: number): Promise<void> {
    try {
      await this.step(this.redis.eval(PUBLISH_IF_HOLDER, 2, key, this.lockKey, token, value, String(ttlMs)));
    } catch {
      // Not shared this time: the lock runs out and another replica counts.
    }
  }

  private step<T>(command: Promise<T>): Promise<T> {
    return withTimeout(command, REDIS_STEP_MS, () => new Error('Redis did not answer'));
  }
}

/** Stored counts, dated by their remaining time to live (before `now`); undefined when absent or unreadable. */
function parse(raw: unknown, ttlMs: number, now: number): HistoryCounts | undefined {
  if (typeof raw !== 'string' || !(ttlMs > 0)) return undefined;
  try {
    const record = JSON.parse(raw) as SharedRecord;
    if (!Array.isArray(record?.rotations)) return undefined;
    return {
      at: now - Math.max(0, KEEP_MS - ttlMs),
      rotations: new Map(record.rotations),
      deliveries: Array.isArray(record.deliveries) ? new Map(record.deliveries) : null,
    };
  } catch {
    return undefined;
  }
}
