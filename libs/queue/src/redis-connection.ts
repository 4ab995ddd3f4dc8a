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

/**
 * Resolves once Redis answers and has the database REDIS_URL names; rejects when it answers without it. ioredis
 * only logs a failed `SELECT` and carries on in database 0, so a mistyped database number would put queues,
 * streams and rate limits into whatever database 0 holds (another deployment's, say) while health checks pass.
 * Waits through an outage like every other connection: an unreachable Redis is not a configuration error.
 */
export async function verifyRedisDatabase(url: string): Promise<void> {
  const { db, ...options } = redisOptionsFromUrl(url);
  if (!db) return;
  const client = new Redis({ ...options, lazyConnect: true, connectionName: 'webhook-secrets-db-check' });
  client.on('error', () => undefined); // connection errors: retried by the strategy above
  try {
    await client.select(db);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new Error(`REDIS_URL names database ${db}, which this Redis server refuses: ${reason}`);
  } finally {
    client.disconnect();
  }
}
