import type { ConnectionOptions } from 'bullmq';
import { isIP } from 'node:net';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisSeed } from '@app/config';
import { endReconnectingBlockingClient } from './blocking-disconnect';
import { endClusterOnDisconnect, keepClusterEnded, settleClusterConnect } from './ioredis-cluster';
import { releaseTimersOnClose } from './ioredis-timers';

// Every client of the process, BullMQ's included, gets its timers cleared with its connection (see there).
releaseTimersOnClose();
// A worker's blocking client that waits to reconnect ends when the worker interrupts its read (close, pause).
endReconnectingBlockingClient();
// Every Cluster client, BullMQ's duplicates included, ends when disconnected while it has no node connection.
endClusterOnDisconnect();
// And an ended one stays ended when a node connection of it ends late.
keepClusterEnded();
// And a connect that meets a cluster whose state is `fail` settles once the client is ready or ended.
settleClusterConnect();

/**
 * How long a connection may go without a byte from Redis while a command waits for its answer before it is dropped
 * and opened again. Above the longest read that blocks on purpose (BullMQ's worker waits up to 10 s for a job, the
 * events ingestor 1 s).
 */
export const REDIS_SOCKET_TIMEOUT_MS = 20_000;

/**
 * ioredis options from a redis:// or rediss:// URL. `maxRetriesPerRequest: null` is what BullMQ workers
 * require; reconnection is unbounded with a capped backoff so the service recovers by itself. A connection that
 * goes silent without being closed (Redis failed over behind a proxy or a load balancer that keeps the old
 * connections open, a network path that drops packets without a reset) is dropped after
 * {@link REDIS_SOCKET_TIMEOUT_MS} and opened again: a command timeout alone fails the command but keeps the
 * connection, and every later command on it would time out too, until TCP gave up hours later.
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  // An IPv6 address comes in brackets (`redis://[fd00::1]:6379`); the socket wants it without.
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return {
    host,
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    // The name the certificate must carry; an address is checked against the certificate's IP entries instead
    // (TLS server names are host names only, RFC 6066).
    tls: u.protocol === 'rediss:' ? (isIP(host) ? {} : { servername: host }) : undefined,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt: number) => Math.min(200 * attempt, 5000),
    socketTimeout: REDIS_SOCKET_TIMEOUT_MS,
  };
}

/** How often a Cluster client reads the slot map again (one `CLUSTER SLOTS`), so it follows a failover by itself. */
export const CLUSTER_SLOTS_REFRESH_MS = 2000;

/**
 * Where Redis is: `REDIS_URL`, whether it names a seed node of a Redis Cluster (`REDIS_CLUSTER`), and the
 * cluster's further seed nodes (`REDIS_CLUSTER_NODES`).
 */
export interface RedisTarget {
  url: string;
  cluster: boolean;
  seeds?: readonly RedisSeed[];
}

/**
 * A client for `target`: one node, or a Cluster client seeded with the node REDIS_URL names and the further seeds
 * (it tries them, in random order, until one answers, and finds the other nodes itself). `extra` holds per-use
 * options (offline queue, timeouts, connection name), applied to every node's connection. Typed as the one-node
 * client: the code uses only what both clients do alike (single-key commands and scripts, pipelines within one
 * hash slot, pub/sub, `duplicate()`).
 */
export function createRedis(target: RedisTarget, extra: RedisOptions = {}): Redis {
  const options = { ...redisOptionsFromUrl(target.url), ...extra };
  if (!target.cluster) return new Redis(options);
  const {
    host,
    port,
    db: _db,
    enableOfflineQueue,
    lazyConnect,
    retryStrategy,
    tls,
    ...nodeOptions
  } = options;
  const seeds = [{ host: host ?? '127.0.0.1', port: port ?? 6379 }, ...(target.seeds ?? [])];
  const cluster = new Cluster(seeds, {
    // The seed's name would be the TLS server name of every node: on TLS, each node is verified by the address
    // or name it announces instead (one certificate naming them all, as managed clusters issue, also works).
    redisOptions: { ...nodeOptions, ...(tls && { tls: {} }) },
    enableOfflineQueue,
    lazyConnect,
    clusterRetryStrategy: retryStrategy,
    // Asks the cluster for its slots every few seconds. Otherwise the client learns of a failover only from an error:
    // a master that hangs (paused, cut off) keeps its connection open, so its shard's commands kept timing out
    // until the socket timeout dropped the connection, some 20 s after the replica had taken over.
    slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
  });
  clusterClients.add(cluster);
  cluster.once('end', () => clusterClients.delete(cluster));
  return cluster as unknown as Redis;
}

// Cluster clients handed to BullMQ are shared, and BullMQ never closes a shared connection.
const clusterClients = new Set<Cluster>();

/** Disconnects every cluster client still open (at shutdown, after the queues have closed). */
export function disconnectClusterClients(): void {
  for (const cluster of clusterClients) cluster.disconnect();
  clusterClients.clear();
}

/**
 * BullMQ's `connection` for `target`: options on one node (BullMQ makes its own connections from them, as it
 * always has), a Cluster client on a cluster (BullMQ shares it, and duplicates it for blocking reads). The
 * `{webhooks}` hash tag of QUEUE_PREFIX keeps every key of every queue in one slot, as BullMQ's multi-key scripts
 * need.
 */
export function bullConnection(target: RedisTarget, extra: RedisOptions = {}): ConnectionOptions {
  return target.cluster ? createRedis(target, extra) : { ...redisOptionsFromUrl(target.url), ...extra };
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
export async function verifyRedisDatabase(target: RedisTarget, retryMs = 1000): Promise<void> {
  // A cluster has database 0 only (the configuration refuses any other with REDIS_CLUSTER=true).
  if (target.cluster) return;
  const { db, ...options } = redisOptionsFromUrl(target.url);
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
