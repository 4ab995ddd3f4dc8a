import { Inject, Injectable, Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Clock, RateLimitedError } from '@app/domain';
import { REDIS } from '@app/queue';

const WINDOW_MS = 60_000;
// Warn about an unreachable Redis at most this often: the warning is per outage, not per request.
const WARN_EVERY_MS = 10_000;

// INCR and set the expiry in one step: a counter without expiry would block its key forever.
const CONSUME_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

type RedisWithRateLimit = Redis & { rateLimitConsume(key: string, ttlMs: number): Promise<number> };

/** What the caller is told about its budget (the RateLimit-* headers). */
export interface RateLimitState {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

/**
 * Requests per minute and API key, shared by every API replica through one Redis counter per key and
 * minute (fixed window: one round trip, one short-lived key). Single-key commands only, so it works on
 * Redis Cluster unchanged.
 *
 * When Redis is unreachable the limiter fails open with a warning: rate limiting protects capacity, and an
 * outage of it must not take down the routes that only need Postgres.
 */
@Injectable()
export class RateLimiter {
  private readonly logger = new Logger(RateLimiter.name);
  private readonly perMinute: number;
  private lastWarning = 0;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.perMinute = config.rateLimit.perMinute;
    this.redis.defineCommand('rateLimitConsume', { numberOfKeys: 1, lua: CONSUME_SCRIPT });
  }

  get enabled(): boolean {
    return this.perMinute > 0;
  }

  /**
   * Counts one request of `apiKeyId`; throws {@link RateLimitedError} over the budget. Returns the state for
   * the response headers, or null when limiting is off or Redis is unreachable.
   */
  async consume(apiKeyId: string): Promise<RateLimitState | null> {
    if (!this.enabled) return null;
    const now = this.clock.now().getTime();
    const window = Math.floor(now / WINDOW_MS);
    const resetSeconds = Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - now) / 1000));
    let count: number;
    try {
      count = await (this.redis as RedisWithRateLimit).rateLimitConsume(
        `ratelimit:${apiKeyId}:${window}`,
        WINDOW_MS + 1000,
      );
    } catch (e) {
      if (now - this.lastWarning > WARN_EVERY_MS) {
        this.lastWarning = now;
        this.logger.warn(`rate limiting is off while Redis is unreachable: ${(e as Error).message}`);
      }
      return null;
    }
    const state = { limit: this.perMinute, remaining: Math.max(0, this.perMinute - count), resetSeconds };
    if (count > this.perMinute) throw new RateLimitExceeded(state);
    return state;
  }
}

/** Over the budget: the 429 carries the same RateLimit-* headers as a successful response. */
export class RateLimitExceeded extends RateLimitedError {
  constructor(readonly state: RateLimitState) {
    super(state.resetSeconds);
  }
}

/** The IETF draft RateLimit headers (the form most clients and gateways read today). */
export function rateLimitHeaders(state: RateLimitState): Record<string, string> {
  return {
    'ratelimit-limit': String(state.limit),
    'ratelimit-remaining': String(state.remaining),
    'ratelimit-reset': String(state.resetSeconds),
  };
}
