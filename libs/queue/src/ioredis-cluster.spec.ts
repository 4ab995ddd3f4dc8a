import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { Cluster } from 'ioredis';
import { endClusterOnDisconnect, keepClusterEnded } from './ioredis-cluster';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

describe('endClusterOnDisconnect (ioredis 5)', () => {
  beforeAll(() => endClusterOnDisconnect()); // applied when redis-connection loads; calling again changes nothing

  it('ends a cluster client disconnected while it waits to reconnect', async () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: await closedPort() }], {
      clusterRetryStrategy: () => 60_000,
    });
    cluster.on('error', () => undefined);
    // (events.once would reject on the client's connection `error` events.)
    await new Promise((resolve) => cluster.once('reconnecting', resolve));
    expect(cluster.nodes('all')).toHaveLength(0);
    const ended = new Promise((resolve) => cluster.once('end', resolve));
    cluster.disconnect();
    // Without the rule the client stays `disconnecting` for ever: no `end` for BullMQ's close to wait for.
    await ended;
    expect(cluster.status).toBe('end');
  });
});

describe('keepClusterEnded (ioredis 5)', () => {
  beforeAll(() => keepClusterEnded()); // applied when redis-connection loads; calling again changes nothing

  it('keeps a cluster client ended when one of its node connections ends after it', async () => {
    const port = await closedPort();
    const cluster = new Cluster([{ host: '127.0.0.1', port }], { lazyConnect: true });
    // A node connection of the client that is still open when the client ends.
    const pool = (cluster as unknown as { connectionPool: { findOrCreate(node: object): Cluster } })
      .connectionPool;
    const node = pool.findOrCreate({ host: '127.0.0.1', port });
    const ended = new Promise((resolve) => cluster.once('end', resolve));
    cluster.disconnect();
    await ended;
    expect(cluster.status).toBe('end');

    // The node connection ends late and the pool is empty again: without the rule the client is `close` for good,
    // and BullMQ, which waits for `ready` or `end` of a client that is not `end`, waits for ever.
    const nodeEnded = new Promise((resolve) => node.once('end', resolve));
    node.disconnect();
    await nodeEnded;
    await new Promise((resolve) => setImmediate(resolve));
    expect(cluster.status).toBe('end');
  });
});
