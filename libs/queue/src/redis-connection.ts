import type { RedisOptions } from 'ioredis';

/**
 * ioredis options from a redis:// or rediss:// URL. `maxRetriesPerRequest: null` is what BullMQ workers
 * require; reconnection is unbounded with a capped backoff so the service recovers by itself.
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: u.protocol === 'rediss:' ? { servername: u.hostname } : undefined,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt: number) => Math.min(200 * attempt, 5000),
  };
}
