import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { Cluster } from 'ioredis';
import { endClusterOnDisconnect } from './ioredis-cluster';

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
