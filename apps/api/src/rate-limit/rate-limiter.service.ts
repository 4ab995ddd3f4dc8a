import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Clock, RateLimitedError } from '@app/domain';
import { REDIS, withTimeout } from '@app/queue';

const WINDOW_MS = 60_000;
// How often each replica adds its local counts to the shared ones (and learns the others').
const SYNC_EVERY_MS = 100;
// Warn about an unreachable Redis at most this often: the warning is per outage, not per request.
const WARN_EVERY_MS = 10_000;
// A replica that has not heard the shared count of a key for this long reads it before deciding (see refresh). Two
// sync intervals: a busy replica, whose syncs answer every interval give or take a late timer, never waits for it.
const STALE_AFTER_MS = 2 * SYNC_EVERY_MS;
// Longest a request waits for the shared count of its key when this replica's is out of date (nothing heard from
// Redis within STALE_AFTER_MS): past it, the request is decided on what this replica knows.
const READ_WAIT_MS = 200;

/** The shared Redis counter of an API key's window: what the replicas add to, and read. */
const counterKey = (apiKeyId: string, window: number): string => `ratelimit:${apiKeyId}:${window}`;

// INCRBY and set the expiry in one step: a counter without expiry would stay in Redis forever.
const ADD_SCRIPT = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n`;

/**
 * Runs `sync` once, `ms` from now; returns what cancels it. The limiter's syncs are the one thing it times
 * itself: tests inject a timer they fire themselves, and drive each sync instead of waiting for it.
 */
export type SyncTimer = (sync: () => Promise<void>, ms: number) => () => void;

/**
 * Injection token of the limiter's {@link SyncTimer}. The application provides none, so the limiter runs on the
 * real timer; tests that build a limiter hand theirs to the constructor.
 */
export const RATE_LIMIT_SYNC_TIMER = Symbol('RATE_LIMIT_SYNC_TIMER');

/** The real {@link SyncTimer}: a timer that never keeps the process alive. */
const realSyncTimer: SyncTimer = (sync, ms) => {
  const timer = setTimeout(() => void sync(), ms);
  timer.unref();
  return () => clearTimeout(timer);
};

type RedisWithRateLimit = Redis & { rateLimitAdd(key: string, n: number, ttlMs: number): Promise<number> };

/** What the caller is told about its budget (the RateLimit-* headers). */
export interface RateLimitState {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

/** One API key's minute, as this replica knows it. */
interface KeyWindow {
  window: number;
  /** The shared count at the last sync (every replica's requests, this one's included). */
  shared: number;
  /** This replica's requests on their way to the shared count (a sync in flight): in neither of the others. */
  sending: number;
  /** This replica's requests since the last sync. */
  pending: number;
  /**
   * This replica's requests whose sync failed without telling whether Redis carried it out (no answer in time):
   * counted here, never sent again, until a later sync's answer, which then includes them if they arrived.
   */
  unsure: number;
  /** When Redis last told this replica the shared count (clock milliseconds), or null: not yet in this window. */
  knownAt: number | null;
  /**
   * The read of the shared count under way ({@link RateLimiterService.refresh}), which concurrent requests wait
   * for.
   */
  reading?: Promise<void>;
}

/**
 * A command refused before it was sent (no connection, and no offline queue): its counts are sent again with the
 * next sync. Every other failure (no answer in time, the connection closed with the command on it) leaves it
 * unknown whether Redis carried the command out.
 */
const NOT_SENT = /enableOfflineQueue/;

/**
 * Requests per minute and API key, shared by every API replica through one Redis counter per key and minute
 * (fixed window). Requests are counted in process and added to the shared counter every 100 ms, so a request
 * costs no Redis round trip; each replica decides on `shared + its own pending`. Across replicas the limit is
 * therefore approximate: a burst may overshoot by what the other replicas admitted within the last sync
 * interval. One replica alone counts exactly. Single-key commands only: works on Redis Cluster unchanged.
 *
 * While Redis is unreachable, counts stay local (each replica enforces the limit on its own traffic) and a
 * warning is logged: rate limiting protects capacity, and its outage must not take down the routes that only
 * need Postgres.
 */
@Injectable()
export class RateLimiterService implements OnApplicationShutdown {
  private readonly logger = new Logger(RateLimiterService.name);
  private readonly perMinute: number;
  private readonly windows = new Map<string, KeyWindow>();
  /** Cancels the sync that is due, if one is. */
  private cancelSync: (() => void) | null = null;
  private stopped = false;
  private lastWarning = 0;
  /** The last command to Redis failed: requests are decided locally, without reading the shared count first. */
  private unreachable = false;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly clock: Clock,
    @Optional() @Inject(RATE_LIMIT_SYNC_TIMER) private readonly syncTimer: SyncTimer = realSyncTimer,
  ) {
    this.perMinute = config.rateLimit.perMinute;
    this.redis.defineCommand('rateLimitAdd', { numberOfKeys: 1, lua: ADD_SCRIPT });
  }

  get enabled(): boolean {
    return this.perMinute > 0;
  }

  /**
   * Makes sure this replica knows the shared count of `apiKeyId`'s window before a request is decided on it: when
   * Redis has not told it within {@link STALE_AFTER_MS} (the key's first request in this window on this replica,
   * or its first after a pause) and no sync is on its way, reads the counter (one GET, shared by the requests that
   * arrive meanwhile, waited for at most {@link READ_WAIT_MS}). Without it, a replica that was idle would decide
   * on an old count, or none, and admit a whole budget the other replicas have already spent. Returns the read to
   * wait for, or undefined when there is none (the usual case: no await on the request's path). Never rejects,
   * and does not read while Redis is unreachable.
   */
  refresh(apiKeyId: string): Promise<void> | undefined {
    if (!this.enabled || this.unreachable || this.stopped) return undefined;
    const now = this.clock.now().getTime();
    const w = this.windowOf(apiKeyId, now);
    if (w.sending > 0 || (w.knownAt !== null && now - w.knownAt < STALE_AFTER_MS)) return undefined;
    return (w.reading ??= this.read(apiKeyId, w).finally(() => (w.reading = undefined)));
  }

  private async read(apiKeyId: string, w: KeyWindow): Promise<void> {
    try {
      const count = await withTimeout(
        this.redis.get(counterKey(apiKeyId, w.window)),
        READ_WAIT_MS,
        () => new Error(`no answer from Redis within ${READ_WAIT_MS} ms`),
      );
      // Counts only grow: a sync answered meanwhile may know a larger one. Redis answers in order: the unanswered
      // adds sent before this read are in its count, or were lost.
      w.shared = Math.max(w.shared, Number(count ?? 0));
      w.unsure = 0;
      w.knownAt = this.clock.now().getTime();
      this.unreachable = false;
    } catch (e) {
      this.unreachable = true;
      this.warn(e as Error);
    }
  }

  private windowOf(apiKeyId: string, now: number): KeyWindow {
    const window = Math.floor(now / WINDOW_MS);
    let w = this.windows.get(apiKeyId);
    if (!w || w.window !== window) {
      w = { window, shared: 0, sending: 0, pending: 0, unsure: 0, knownAt: null };
      this.windows.set(apiKeyId, w);
    }
    return w;
  }

  /**
   * Counts one request of `apiKeyId`; throws {@link RateLimitExceeded} over the budget (a refused request is
   * not counted). Returns the state for the response headers, or null when limiting is off.
   */
  consume(apiKeyId: string): RateLimitState | null {
    if (!this.enabled) return null;
    const now = this.clock.now().getTime();
    const w = this.windowOf(apiKeyId, now);
    const resetSeconds = Math.max(1, Math.ceil(((w.window + 1) * WINDOW_MS - now) / 1000));
    const used = w.shared + w.sending + w.pending + w.unsure + 1;
    const state = { limit: this.perMinute, remaining: Math.max(0, this.perMinute - used), resetSeconds };
    if (used > this.perMinute) throw new RateLimitExceeded({ ...state, remaining: 0 });
    w.pending += 1;
    this.scheduleSync();
    return state;
  }

  /** Adds the pending counts to the shared counters and learns the totals. */
  private async sync(): Promise<void> {
    this.cancelSync = null;
    const current = Math.floor(this.clock.now().getTime() / WINDOW_MS);
    const batch: [string, KeyWindow, number][] = [];
    for (const [id, w] of this.windows) {
      if (w.pending > 0) {
        batch.push([id, w, w.pending]);
        w.sending += w.pending;
        w.pending = 0;
      } else if (w.window < current && w.sending === 0) {
        this.windows.delete(id);
      }
    }
    await Promise.all(
      batch.map(async ([id, w, sent]) => {
        try {
          w.shared = await (this.redis as RedisWithRateLimit).rateLimitAdd(
            counterKey(id, w.window),
            sent,
            WINDOW_MS + 1000,
          );
          // Redis answers in order: the unanswered adds sent before this one are in its total, or were lost.
          w.unsure = 0;
          w.knownAt = this.clock.now().getTime();
          this.unreachable = false;
        } catch (e) {
          // Sent again only when it surely was not sent: an add that timed out may still be carried out once
          // Redis answers again (it waits on the connection), and sending it again would count it twice.
          if (NOT_SENT.test((e as Error).message)) w.pending += sent;
          else w.unsure += sent;
          this.unreachable = true;
          this.warn(e as Error);
        } finally {
          w.sending -= sent;
        }
      }),
    );
    if (this.windows.size > 0 && batch.some(([, w]) => w.pending > 0)) this.scheduleSync();
  }

  /** One sync at a time, never after shutdown, and never what keeps the process alive. */
  private scheduleSync(): void {
    if (this.stopped || this.cancelSync) return;
    this.cancelSync = this.syncTimer(() => this.sync(), SYNC_EVERY_MS);
  }

  /** Stops syncing: a stopping replica's last 100 ms of counts are not worth delaying its exit. */
  onApplicationShutdown(): void {
    this.stopped = true;
    this.cancelSync?.();
    this.cancelSync = null;
  }

  private warn(e: Error): void {
    const now = Date.now();
    if (now - this.lastWarning < WARN_EVERY_MS) return;
    this.lastWarning = now;
    this.logger.warn(`rate limits are counted per replica while Redis is unreachable: ${e.message}`);
  }
}

/** Over the budget: the 429 carries the same RateLimit-* headers as a successful response. */
export class RateLimitExceeded extends RateLimitedError {
  constructor(readonly state: RateLimitState) {
    super(state.resetSeconds);
  }
}

/**
 * The RateLimit headers in both forms of the IETF draft: `RateLimit-Limit`, `-Remaining` and `-Reset` (the form
 * most clients and gateways read today), and the structured `RateLimit` and `RateLimit-Policy` of its later
 * revisions (one policy, "per-minute": `q` requests per `w` seconds; `r` of them left, `t` seconds to the reset).
 */
export function rateLimitHeaders(state: RateLimitState): Record<string, string> {
  return {
    'ratelimit-limit': String(state.limit),
    'ratelimit-remaining': String(state.remaining),
    'ratelimit-reset': String(state.resetSeconds),
    'ratelimit-policy': `"per-minute";q=${state.limit};w=60`,
    ratelimit: `"per-minute";r=${state.remaining};t=${state.resetSeconds}`,
  };
}
