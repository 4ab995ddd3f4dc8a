import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { releaseTimersOnClose } from './ioredis-timers';

/** A server on a loopback port that hands each connection, numbered from 1, to `onConnection`. */
async function listen(onConnection: (socket: Socket, n: number) => void): Promise<Server> {
  let n = 0;
  const server = createServer((socket) => onConnection(socket, ++n));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

const portOf = (server: Server) => (server.address() as AddressInfo).port;

async function stop(server: Server): Promise<void> {
  server.close();
  await once(server, 'close');
}

/** A client that needs no answer to become ready (no SELECT, no CLIENT SETINFO, no ready check). */
const client = (port: number, extra: RedisOptions = {}) =>
  new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    enableReadyCheck: false,
    disableClientInfo: true,
    maxRetriesPerRequest: null,
    ...extra,
  });

describe('releaseTimersOnClose (ioredis 5)', () => {
  beforeAll(() => releaseTimersOnClose()); // applied when redis-connection loads; calling again changes nothing

  it('clears the socket timeout of a command still waiting when its connection is closed', async () => {
    const sockets: Socket[] = [];
    const server = await listen((socket) => sockets.push(socket.on('data', () => undefined))); // never answers
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const redis = client(portOf(server), { socketTimeout: 20_000 });
    try {
      await redis.connect();
      const pending = redis.get('k').catch((e: Error) => e);
      await new Promise((resolve) => setImmediate(resolve));
      redis.disconnect();
      await once(redis, 'end');
      expect(await pending).toBeInstanceOf(Error);
      // Without the rule a 20 s timer would still be running, holding the process open.
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
      redis.disconnect();
      for (const s of sockets) s.destroy();
      await stop(server);
    }
  });

  it('does not let the socket timeout of a lost connection drop the connection that replaced it', async () => {
    // The first connection takes the PING and is then lost unanswered; the next ones answer.
    const server = await listen((socket, n) =>
      socket.on('data', (data) => {
        if (n === 1) setTimeout(() => socket.destroy(), 20);
        else if (data.toString().toLowerCase().includes('ping')) socket.write('+PONG\r\n');
      }),
    );
    let connections = 0;
    const socketTimeout = 500;
    const redis = client(portOf(server), { socketTimeout, retryStrategy: () => 10 });
    redis.on('error', () => undefined);
    redis.on('connect', () => connections++);
    try {
      await redis.connect();
      const pong = redis.ping(); // arms the first connection's socket timeout
      // Armed just after it, for as long: Node runs timers of one duration in the order they were armed, so this
      // one runs once that deadline has passed.
      const pastDeadline = new Promise((resolve) => setTimeout(resolve, socketTimeout));
      expect(await pong).toBe('PONG'); // sent again on the second connection, answered there
      await pastDeadline;
      // Had the deadline destroyed the second connection, this would be answered on a third one.
      expect(await redis.ping()).toBe('PONG');
      expect(connections).toBe(2);
      expect(redis.status).toBe('ready');
    } finally {
      redis.disconnect();
      await stop(server);
    }
  });

  it('arms no timer to destroy a connection that is already gone when a reconnecting client is closed', async () => {
    const gone = await listen(() => undefined);
    const port = portOf(gone);
    await stop(gone); // nothing listens there any more
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const redis = client(port, { retryStrategy: () => 60_000 });
    try {
      redis.on('error', () => undefined);
      const reconnecting = new Promise((resolve) => redis.once('reconnecting', resolve));
      redis.connect().catch(() => undefined);
      await reconnecting;
      redis.disconnect();
      await new Promise((resolve) => setImmediate(resolve));
      // Without the rule a 2 s timer would still be running, to destroy a socket that closed already.
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
      redis.disconnect();
    }
  });
});
