import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Cluster } from 'ioredis';
import { endClusterOnDisconnect, keepClusterEnded, settleClusterConnect } from './ioredis-cluster';
import { releaseTimersOnClose } from './ioredis-timers';
import { closedPort } from '../../../test/support/closed-port';

// Applied when redis-connection loads, as in the processes: a node connection closed while it had none open arms
// no timer to destroy it, which would hold Jest open after the run.
beforeAll(() => releaseTimersOnClose());

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

/**
 * A one-node "cluster" on a loopback port that holds every slot and says `cluster_state:fail` (a shard without a
 * master): just enough RESP for ioredis's node and cluster ready checks.
 */
async function failingClusterNode(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    socket.on('data', (d: Buffer) => {
      buffered += d.toString();
      // Each command is a RESP array of bulk strings; answer every complete one.
      for (;;) {
        const m = /^\*(\d+)\r\n/.exec(buffered);
        if (!m) return;
        let at = m[0].length;
        const args: string[] = [];
        for (let i = 0; i < Number(m[1]); i++) {
          const len = /^\$(\d+)\r\n/.exec(buffered.slice(at));
          if (!len || buffered.length < at + len[0].length + Number(len[1]) + 2) return;
          at += len[0].length;
          args.push(buffered.slice(at, at + Number(len[1])));
          at += Number(len[1]) + 2;
        }
        buffered = buffered.slice(at);
        const command = args.join(' ').toLowerCase();
        if (command === 'cluster slots')
          socket.write(`*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n${bulk('127.0.0.1')}:${port}\r\n`);
        else if (command === 'cluster info') socket.write(bulk('cluster_state:fail\r\n'));
        else if (command === 'info') socket.write(bulk('# Server\r\nloading:0\r\n'));
        else socket.write('+OK\r\n');
      }
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

describe('settleClusterConnect (ioredis 5)', () => {
  beforeAll(() => settleClusterConnect()); // applied when redis-connection loads; calling again changes nothing

  it('settles a connect whose ready check finds the cluster failed once the client ends', async () => {
    const node = await failingClusterNode();
    const cluster = new Cluster([{ host: '127.0.0.1', port: node.port }], {
      lazyConnect: true,
      clusterRetryStrategy: () => 60_000,
    });
    cluster.on('error', () => undefined);
    try {
      const reconnecting = new Promise((resolve) => cluster.once('reconnecting', resolve));
      const outcome = cluster.connect().then(
        () => 'connected',
        (e: Error) => e.message,
      );
      // The ready check found `cluster_state:fail`: the client dropped its connections to try again later.
      await reconnecting;
      // Ending the client settles the attempt. Without the rule its promise stays pending for ever (BullMQ, which
      // awaits it to reconnect a worker's blocking client, then never takes another job nor finishes closing).
      const ended = new Promise((resolve) => cluster.once('end', resolve));
      cluster.disconnect();
      await ended;
      await new Promise((resolve) => setImmediate(resolve));
      expect(await Promise.race([outcome, Promise.resolve('still pending')])).toBe('Connection is closed.');
    } finally {
      cluster.disconnect();
      await node.close();
    }
  });
});
