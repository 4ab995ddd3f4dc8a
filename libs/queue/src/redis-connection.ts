import { Redis, type RedisOptions } from 'ioredis';

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

// Answers to SELECT that no retry changes: the database does not exist, or the credentials are refused.
const FATAL_SELECT_REPLY = /DB index|invalid DB|out of range|NOAUTH|WRONGPASS|NOPERM/i;

/**
 * Resolves once Redis answers and has the database REDIS_URL names; rejects when it refuses it. ioredis only
 * logs a failed `SELECT` and carries on in database 0, so a mistyped database number would put queues, streams
 * and rate limits into whatever database 0 holds (another deployment's, say) while health checks pass. Waits
 * through an outage, and through passing refusals (a Redis still loading its data), like every other
 * connection: only a refusal no retry changes is a configuration error.
 */
export async function verifyRedisDatabase(url: string, retryMs = 1000): Promise<void> {
  const { db, ...options } = redisOptionsFromUrl(url);
  if (!db) return;
  const client = new Redis({ ...options, lazyConnect: true, connectionName: 'webhook-secrets-db-check' });
  client.on('error', () => undefined); // connection errors: retried by the strategy above
  try {
    for (;;) {
      try {
        await client.select(db);
        return;
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        if (FATAL_SELECT_REPLY.test(reason))
          throw new Error(`REDIS_URL names database ${db}, which this Redis server refuses: ${reason}`);
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    }
  } finally {
    client.disconnect();
  }
}
