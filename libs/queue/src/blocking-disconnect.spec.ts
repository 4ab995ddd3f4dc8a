import { RedisConnection } from 'bullmq';
import { Redis } from 'ioredis';
import { endReconnectingBlockingClient } from './blocking-disconnect';
import { releaseTimersOnClose } from './ioredis-timers';
import { closedPort } from '../../../test/support/closed-port';

/**
 * A client waiting to reconnect (a minute between attempts), holding a read, and the part of a BullMQ
 * RedisConnection that `disconnect` uses, around it.
 */
async function reconnectingConnection() {
  const redis = new Redis({
    host: '127.0.0.1',
    port: await closedPort(),
    lazyConnect: true,
    maxRetriesPerRequest: null,
    retryStrategy: () => 60_000,
  });
  redis.on('error', () => undefined); // the refused connection (`events.once` would reject on it)
  const reconnecting = new Promise((resolve) => redis.once('reconnecting', resolve));
  redis.connect().catch(() => undefined);
  await reconnecting;
  const read = redis.bzpopmin('k', 10).catch((e: Error) => e);
  const connection = Object.assign(Object.create(RedisConnection.prototype) as object, {
    initializing: Promise.resolve(redis), // what its `client` getter returns
  }) as unknown as RedisConnection;
  return { redis, read, connection };
}

describe('endReconnectingBlockingClient (BullMQ 5 on ioredis 5)', () => {
  beforeAll(() => {
    // Both applied when redis-connection loads (calling again changes nothing); the second keeps the disconnect
    // of a lost connection from arming a timer that would hold Jest open.
    endReconnectingBlockingClient();
    releaseTimersOnClose();
  });

  it('ends a client waiting to reconnect when its connection is disconnected and waited for', async () => {
    const { redis, read, connection } = await reconnectingConnection();
    try {
      // Without the rule this never settled: no `end` comes for a client waiting to reconnect.
      await connection.disconnect(true);
      expect(redis.status).toBe('end');
      expect(await read).toEqual(new Error('Connection is closed.'));
    } finally {
      redis.disconnect();
    }
  });

  it('leaves a disconnect without waiting as it was', async () => {
    const { redis, connection } = await reconnectingConnection();
    try {
      await connection.disconnect(false);
      expect(redis.status).toBe('reconnecting');
    } finally {
      redis.disconnect();
    }
  });
});
