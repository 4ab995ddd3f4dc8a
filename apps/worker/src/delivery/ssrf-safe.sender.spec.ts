import { execFileSync } from 'node:child_process';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { deliveryHeaders, verifyWebhookSignature } from '@app/signing';
import { isPublicAddress } from '@app/validation';
import { closedPort } from '../../../../test/support/closed-port';
import { NameServer } from '../../../../test/support/name-server';
import { selfSignedCertificate } from '../../../../test/support/self-signed-certificate';
import { nameServerResolver } from './name-server.resolver';
import {
  classifyOutcome,
  parseRetryAfter,
  SsrfSafeSender,
  type HostResolver,
  type SendResult,
} from './ssrf-safe.sender';

const NAME = 'receiver.test.example';
const SECRET = '36da51b166a69268a59a8d5ee0b32c9f5e5aaee7d301c7a5a36844318e116fc6';

// A deliberately small stand-in for the validation lib's isPublicAddress: enough private ranges to test with.
const strict = (address: string) =>
  !/^(0\.|10\.|127\.|169\.254\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.)/.test(address) &&
  address !== '::1' &&
  !address.startsWith('::ffff:');
// What TARGET_ALLOW_CIDRS=127.0.0.1/32 would do for a local test receiver.
const allowLoopback = (address: string) => address === '127.0.0.1' || strict(address);

const pinned =
  (table: Record<string, string[]>): HostResolver =>
  async (hostname) => {
    const addresses = table[hostname];
    if (!addresses)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  servername: string | false | null | undefined;
  remoteAddress: string | undefined;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, requestOnSocket: number) => void;

/** A receiver that records what arrives and counts connections, answering with the current handler. */
class Receiver {
  readonly received: Received[] = [];
  connections = 0;
  handler: Handler = (_req, res) => res.end('ok');
  private readonly sockets = new Set<Socket>();
  private readonly perSocket = new WeakMap<Socket, number>();

  constructor(readonly server: http.Server | https.Server) {
    server.on('connection', (socket: Socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const socket = req.socket;
        const count = (this.perSocket.get(socket) ?? 0) + 1;
        this.perSocket.set(socket, count);
        this.received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          servername: (socket as TLSSocket).servername,
          remoteAddress: socket.remoteAddress,
        });
        this.handler(req, res, count);
      });
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  reset(): void {
    this.received.length = 0;
    this.connections = 0;
    this.handler = (_req, res) => res.end('ok');
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let cert: Buffer;
let tlsReceiver: Receiver;
let plainReceiver: Receiver;
let tlsPort: number;
let plainPort: number;
const senders: SsrfSafeSender[] = [];

function sender(options: Partial<ConstructorParameters<typeof SsrfSafeSender>[0]> = {}): SsrfSafeSender {
  const created = new SsrfSafeSender({
    isAllowedAddress: allowLoopback,
    resolve: pinned({ [NAME]: ['127.0.0.1'] }),
    tls: { ca: cert },
    ...options,
  });
  senders.push(created);
  return created;
}

const post = (target: SsrfSafeSender, url: string, timeoutMs?: number) =>
  target.send({ url, headers: { 'Content-Type': 'application/json' }, body: '{"id":"evt_1"}', timeoutMs });

/** Resolves when `target` has the status of its next response, whose body it is about to read. */
function statusIn(target: SsrfSafeSender): Promise<void> {
  const internals = target as unknown as { drain: (...args: unknown[]) => void };
  const drain = internals.drain.bind(target);
  return new Promise((resolve) => {
    internals.drain = (...args) => {
      internals.drain = drain;
      drain(...args);
      resolve();
    };
  });
}

beforeAll(async () => {
  const made = selfSignedCertificate(NAME);
  cert = made.cert;
  tlsReceiver = new Receiver(https.createServer({ key: made.key, cert }));
  plainReceiver = new Receiver(http.createServer());
  tlsPort = await tlsReceiver.listen();
  plainPort = await plainReceiver.listen();
});

afterEach(() => {
  for (const created of senders.splice(0)) created.close();
  tlsReceiver.reset();
  plainReceiver.reset();
});

afterAll(async () => {
  await tlsReceiver.close();
  await plainReceiver.close();
});

describe('SsrfSafeSender over TLS', () => {
  it('connects to the vetted address of the name and verifies the certificate for the name', async () => {
    const resolve = jest.fn(pinned({ [NAME]: ['127.0.0.1'] }));
    const body = '{"id":"evt_1","type":"task.completed"}';
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = deliveryHeaders({
      eventType: 'task.completed',
      deliveryId: 'd1',
      timestamp,
      body,
      secrets: [SECRET],
    });

    const result = await sender({ resolve }).send({
      url: `https://${NAME}:${tlsPort}/hooks?x=1#frag`,
      headers,
      body,
    });

    expect(result).toEqual({ kind: 'response', status: 200 });
    expect(resolve).toHaveBeenCalledTimes(1);
    expect(resolve).toHaveBeenCalledWith(NAME);
    expect(tlsReceiver.received).toHaveLength(1);
    const [got] = tlsReceiver.received;
    expect(got).toMatchObject({
      method: 'POST',
      url: '/hooks?x=1',
      body,
      servername: NAME,
      remoteAddress: '127.0.0.1',
    });
    expect(got.headers.host).toBe(`${NAME}:${tlsPort}`);
    expect(got.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(got.headers['user-agent']).toBe('Anchor-Webhooks/1.0');
    expect(
      verifyWebhookSignature({ headers: got.headers, rawBody: got.body, secrets: SECRET }),
    ).toMatchObject({
      ok: true,
    });
  });

  it('accepts a fully qualified name with a trailing dot', async () => {
    const result = await post(
      sender({ resolve: pinned({ [`${NAME}.`]: ['127.0.0.1'] }) }),
      `https://${NAME}.:${tlsPort}/`,
    );
    expect(result).toEqual({ kind: 'response', status: 200 });
    expect(tlsReceiver.received[0].servername).toBe(NAME);
  });

  it('fails when the certificate does not name the host, even though the address is allowed', async () => {
    const other = 'other.test.example';
    const result = await post(
      sender({ resolve: pinned({ [other]: ['127.0.0.1'] }) }),
      `https://${other}:${tlsPort}/`,
    );
    expect(result.kind).toBe('network_error');
    expect(result).toMatchObject({ error: expect.stringMatching(/altnames|does not match/i) });
    // The delivery log is the customer's: it names their host, not what the certificate found there names.
    expect(result).toMatchObject({ error: expect.stringContaining(other) });
    expect(result).not.toMatchObject({ error: expect.stringContaining(NAME) });
    expect(tlsReceiver.received).toHaveLength(0);
  });

  it('fails when the certificate is not trusted (production trust settings)', async () => {
    const result = await post(sender({ tls: undefined }), `https://${NAME}:${tlsPort}/`);
    expect(result).toMatchObject({ kind: 'network_error', error: expect.stringMatching(/self[- ]signed/i) });
    expect(tlsReceiver.received).toHaveLength(0);
  });

  it('names the host and the TLS failure in one line when the receiver does not speak TLS', async () => {
    const result = await post(sender(), `https://${NAME}:${plainPort}/`);
    // Not OpenSSL's own text, with its error codes and the worker's build paths.
    expect(result).toEqual({
      kind: 'network_error',
      error: `EPROTO: TLS with ${NAME}:${plainPort} failed: wrong version number`,
    });
    expect(classifyOutcome(result)).toBe('retry');
  });

  it('reuses one kept-alive connection for consecutive deliveries, resolving each time', async () => {
    const resolve = jest.fn(pinned({ [NAME]: ['127.0.0.1'] }));
    const target = sender({ resolve });
    for (let i = 0; i < 5; i += 1) {
      expect(await post(target, `https://${NAME}:${tlsPort}/`)).toEqual({ kind: 'response', status: 200 });
    }
    expect(tlsReceiver.connections).toBe(1);
    expect(resolve).toHaveBeenCalledTimes(5);
  });

  it('keeps concurrent deliveries on a bounded set of connections', async () => {
    const target = sender();
    const results = await Promise.all(
      Array.from({ length: 200 }, () => post(target, `https://${NAME}:${tlsPort}/`)),
    );
    expect(results.every((r) => r.kind === 'response' && r.status === 200)).toBe(true);
    const more = await Promise.all(
      Array.from({ length: 200 }, () => post(target, `https://${NAME}:${tlsPort}/`)),
    );
    expect(more.every((r) => r.kind === 'response' && r.status === 200)).toBe(true);
    // The second wave rides on the connections opened by the first.
    expect(tlsReceiver.connections).toBeLessThanOrEqual(200);
    expect(tlsReceiver.received).toHaveLength(400);
  });
});

describe('SsrfSafeSender address vetting', () => {
  it.each([
    [NAME, '127.0.0.1'],
    ['metadata.test.example', '169.254.169.254'],
    ['intranet.test.example', '10.1.2.3'],
    ['v6.test.example', '::1'],
    ['mapped.test.example', '::ffff:127.0.0.1'],
  ])('refuses %s resolving to %s before connecting', async (host, address) => {
    const target = sender({ isAllowedAddress: strict, resolve: pinned({ [host]: [address] }) });
    const result = await post(target, `https://${host}:${tlsPort}/`);
    expect(result).toEqual({
      kind: 'refused',
      error: `delivery refused: ${host} resolves to a non-public address`,
      address,
    });
    expect(classifyOutcome(result)).toBe('failed');
    expect(tlsReceiver.connections).toBe(0);
  });

  it.each([
    [['93.184.216.34', '10.0.0.7'], '10.0.0.7'],
    [['127.0.0.1', '93.184.216.34'], '127.0.0.1'],
    [['2606:2800:220:1:248:1893:25c8:1946', '192.168.1.1'], '192.168.1.1'],
  ])('refuses a name resolving to %j because %s is private', async (addresses, bad) => {
    const target = sender({ isAllowedAddress: strict, resolve: pinned({ [NAME]: addresses }) });
    const result = await post(target, `https://${NAME}:${tlsPort}/`);
    expect(result).toEqual({
      kind: 'refused',
      error: `delivery refused: ${NAME} resolves to a non-public address`,
      address: bad,
    });
    expect(tlsReceiver.connections).toBe(0);
  });

  it.each([
    ['127.0.0.1', `https://127.0.0.1:${0}/`],
    ['::1', 'https://[::1]:1/'],
    ['169.254.169.254', 'http://169.254.169.254/latest/meta-data/'],
  ])('refuses the IP literal %s without asking DNS', async (address, url) => {
    const resolve = jest.fn(pinned({}));
    const result = await post(
      sender({ isAllowedAddress: strict, resolve }),
      url.replace(':0/', `:${tlsPort}/`),
    );
    expect(result).toEqual({
      kind: 'refused',
      error: `delivery refused: ${address} is a non-public address`,
    });
    expect(resolve).not.toHaveBeenCalled();
    expect(tlsReceiver.connections).toBe(0);
  });

  it('connects to an allowed IP literal without asking DNS', async () => {
    const resolve = jest.fn(pinned({}));
    const result = await post(sender({ resolve }), `http://127.0.0.1:${plainPort}/x`);
    expect(result).toEqual({ kind: 'response', status: 200 });
    expect(resolve).not.toHaveBeenCalled();
  });

  it('refuses a resolver answer that is not an IP address', async () => {
    const resolve: HostResolver = async () => [{ address: 'evil.example', family: 4 }];
    const result = await post(
      sender({ isAllowedAddress: () => true, resolve }),
      `https://${NAME}:${tlsPort}/`,
    );
    expect(result.kind).toBe('refused');
  });

  it.each([
    ['an unsupported scheme', 'ftp://receiver.test.example/'],
    ['a URL that does not parse', 'not a url'],
  ])('refuses %s', async (_name, url) => {
    expect((await post(sender(), url)).kind).toBe('refused');
  });
});

describe('SsrfSafeSender failures', () => {
  it('times out against a receiver that never answers', async () => {
    plainReceiver.handler = () => undefined;
    // Only the attempt's deadline yields a timeout, and it names its budget (no wall-clock bound: the machine
    // may be loaded; the next test pins when the deadline fires).
    const result = await post(sender(), `http://${NAME}:${plainPort}/`, 300);
    expect(result).toMatchObject({ kind: 'timeout', error: expect.stringContaining('300 ms') });
    expect(classifyOutcome(result)).toBe('retry');
  });

  it('gives an attempt 10 seconds when no budget is given', async () => {
    jest.useFakeTimers();
    try {
      const resolve: HostResolver = () => new Promise(() => undefined);
      let result: SendResult | undefined;
      const attempt = post(sender({ resolve }), `https://${NAME}/`).then((r) => (result = r));
      await jest.advanceTimersByTimeAsync(9_999);
      expect(result).toBeUndefined();
      await jest.advanceTimersByTimeAsync(1);
      await attempt;
      expect(result).toMatchObject({ kind: 'timeout', error: expect.stringContaining('after 10000 ms') });
    } finally {
      jest.useRealTimers();
    }
  });

  it('counts a slow resolver against the same budget', async () => {
    const resolve: HostResolver = () => new Promise(() => undefined);
    const result = await post(sender({ resolve }), `http://${NAME}:${plainPort}/`, 200);
    expect(result.kind).toBe('timeout');
  });

  it('shares one lookup among the attempts to a host while it is in flight, and looks up afresh after', async () => {
    let answer: (addresses: { address: string; family: number }[]) => void = () => undefined;
    const resolve = jest.fn<ReturnType<HostResolver>, Parameters<HostResolver>>(
      () => new Promise((done) => (answer = done)),
    );
    const target = sender({ resolve });
    const attempts = Array.from({ length: 5 }, () => post(target, `http://${NAME}:${plainPort}/`));
    await new Promise((r) => setImmediate(r));
    expect(resolve).toHaveBeenCalledTimes(1);
    answer([{ address: '127.0.0.1', family: 4 }]);
    for (const result of await Promise.all(attempts))
      expect(result).toEqual({ kind: 'response', status: 200 });
    resolve.mockImplementation(pinned({ [NAME]: ['127.0.0.1'] }));
    expect(await post(target, `http://${NAME}:${plainPort}/`)).toEqual({ kind: 'response', status: 200 });
    expect(resolve).toHaveBeenCalledTimes(2);
  });

  it('reports a refused connection as a network error', async () => {
    const port = await closedPort();

    const result = await post(sender(), `http://${NAME}:${port}/`);
    expect(result).toMatchObject({ kind: 'network_error', error: expect.stringContaining('ECONNREFUSED') });
    // Named by the host, not by the address it resolved to on the worker's network.
    expect(result).toMatchObject({ error: `ECONNREFUSED: could not connect to ${NAME}:${port}` });
    expect(classifyOutcome(result)).toBe('retry');
  });

  const noAddresses: HostResolver = async () => [];
  it.each([
    ['an unknown name', pinned({})],
    ['an empty answer', noAddresses],
  ])('reports %s as a network error', async (_name, resolve) => {
    const result = await post(sender({ resolve }), `https://${NAME}/`);
    expect(result).toMatchObject({
      kind: 'network_error',
      error: expect.stringContaining(`could not resolve ${NAME}`),
    });
  });

  it('does not follow redirects', async () => {
    plainReceiver.handler = (_req, res) => {
      res.writeHead(302, { Location: `http://${NAME}:${plainPort}/elsewhere` }).end();
    };
    const result = await post(sender(), `http://${NAME}:${plainPort}/start`);
    expect(result).toEqual({ kind: 'response', status: 302 });
    expect(plainReceiver.received.map((r) => r.url)).toEqual(['/start']);
    expect(classifyOutcome(result)).toBe('failed');
  });

  it.each([
    ['plain HTTP', false],
    ['TLS', true],
  ])(
    'takes a 101 Switching Protocols over %s as an answer that fails the delivery',
    async (_name, overTls) => {
      // Written on the socket past the server's own response handling, as a hostile receiver would.
      const switching = (req: http.IncomingMessage) =>
        req.socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
        );
      tlsReceiver.handler = switching;
      plainReceiver.handler = switching;
      const url = overTls ? `https://${NAME}:${tlsPort}/` : `http://${NAME}:${plainPort}/`;
      // Within the default budget: before, the attempt only ended when it ran out, as a timeout to retry.
      const result = await post(sender(), url);
      expect(result).toEqual({ kind: 'response', status: 101 });
      expect(classifyOutcome(result)).toBe('failed');
    },
  );

  it('passes on Retry-After as seconds or as an HTTP date', async () => {
    const now = Date.parse('Sun, 22 Nov 2026 10:00:00 GMT');
    const target = sender({ now: () => now });
    plainReceiver.handler = (_req, res) => res.writeHead(429, { 'Retry-After': '120' }).end();
    expect(await post(target, `http://${NAME}:${plainPort}/`)).toEqual({
      kind: 'response',
      status: 429,
      retryAfterSeconds: 120,
    });
    plainReceiver.handler = (_req, res) =>
      res.writeHead(503, { 'Retry-After': 'Sun, 22 Nov 2026 10:01:30 GMT' }).end();
    expect(await post(target, `http://${NAME}:${plainPort}/`)).toEqual({
      kind: 'response',
      status: 503,
      retryAfterSeconds: 90,
    });
  });

  it('stops reading an oversized response and drops that connection', async () => {
    plainReceiver.handler = (_req, res) => res.end(Buffer.alloc(4 * 1024 * 1024, 'a'));
    const target = sender({ maxResponseBytes: 1024 });
    expect(await post(target, `http://${NAME}:${plainPort}/`)).toEqual({ kind: 'response', status: 200 });
    plainReceiver.handler = (_req, res) => res.end('ok');
    expect(await post(target, `http://${NAME}:${plainPort}/`)).toEqual({ kind: 'response', status: 200 });
    expect(plainReceiver.connections).toBe(2);
  });

  it('drops a connection whose body trickles in after the status, so the next attempt is not kept waiting', async () => {
    // The status at once, then one byte at a time, never finishing the body.
    plainReceiver.handler = (req, res) => {
      res.writeHead(200, { 'Content-Length': '100000' }).write('a');
      const drip = setInterval(() => (req.socket.destroyed ? clearInterval(drip) : res.write('a')), 50);
    };
    // One connection per origin makes the second attempt wait for the first one's (the default is 256).
    const target = sender({ maxSocketsPerHost: 1, drainTimeoutMs: 100 });
    const url = `http://${NAME}:${plainPort}/`;
    expect(await post(target, url)).toEqual({ kind: 'response', status: 200 });
    // Before, the first body held the only connection for the rest of its attempt's budget (10 s), and this
    // attempt, with less time left, waited for it until its own budget ran out.
    expect(await post(target, url, 5_000)).toEqual({ kind: 'response', status: 200 });
    expect(plainReceiver.connections).toBe(2);
  });

  it('resolves once the body is read, so an attempt lasts as long as it keeps its connection', async () => {
    let finish: () => void = () => undefined;
    plainReceiver.handler = (_req, res) => {
      res.writeHead(200, { 'Content-Length': '2' }).write('o');
      finish = () => res.end('k');
    };
    const target = sender();
    const url = `http://${NAME}:${plainPort}/`;
    const answered = statusIn(target);
    let result: SendResult | undefined;
    const attempt = post(target, url).then((r) => (result = r));
    await answered;
    await new Promise((resolve) => setImmediate(resolve));
    // The status is in, the body is not: the connection is still the attempt's.
    expect(result).toBeUndefined();
    finish();
    await attempt;
    expect(result).toEqual({ kind: 'response', status: 200 });
    // Read to its end, the body left its connection to the next attempt.
    plainReceiver.handler = (_req, res) => res.end('ok');
    expect(await post(target, url)).toEqual({ kind: 'response', status: 200 });
    expect(plainReceiver.connections).toBe(1);
  });

  it("keeps the status of an answer whose body never ends, past the attempt's budget, and drops its connection", async () => {
    plainReceiver.handler = (_req, res) => {
      res.writeHead(200, { 'Content-Length': '2' }).write('o');
    };
    const target = sender({ drainTimeoutMs: 5_000 });
    const url = `http://${NAME}:${plainPort}/`;
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      const answered = statusIn(target);
      let result: SendResult | undefined;
      const attempt = post(target, url, 1_000).then((r) => (result = r));
      await answered;
      // The attempt's budget ends with its status: past it, only the body's own limit is running.
      await jest.advanceTimersByTimeAsync(4_999);
      expect(result).toBeUndefined();
      await jest.advanceTimersByTimeAsync(1);
      await attempt;
      expect(result).toEqual({ kind: 'response', status: 200 });
    } finally {
      jest.useRealTimers();
    }
    plainReceiver.handler = (_req, res) => res.end('ok');
    expect(await post(target, url)).toEqual({ kind: 'response', status: 200 });
    expect(plainReceiver.connections).toBe(2);
  });

  it('retries once on a fresh connection when a pooled one turns out to be closed', async () => {
    // The second request on a connection is dropped unanswered, as when the receiver's idle timeout races us.
    plainReceiver.handler = (req, res, requestOnSocket) => {
      if (requestOnSocket > 1) req.socket.destroy();
      else res.end('ok');
    };
    const target = sender();
    expect(await post(target, `http://${NAME}:${plainPort}/`)).toEqual({ kind: 'response', status: 200 });
    expect(await post(target, `http://${NAME}:${plainPort}/`)).toEqual({ kind: 'response', status: 200 });
    expect(plainReceiver.connections).toBe(2);
  });

  it('retries over TLS on a fresh connection with the same trust settings', async () => {
    tlsReceiver.handler = (req, res, requestOnSocket) => {
      if (requestOnSocket > 1) req.socket.destroy();
      else res.end('ok');
    };
    const target = sender();
    expect(await post(target, `https://${NAME}:${tlsPort}/`)).toEqual({ kind: 'response', status: 200 });
    expect(await post(target, `https://${NAME}:${tlsPort}/`)).toEqual({ kind: 'response', status: 200 });
    expect(tlsReceiver.connections).toBe(2);
    expect(tlsReceiver.received.map((r) => r.servername)).toEqual([NAME, NAME, NAME]);
  });

  it('sends a request the receiver drops again at most once, on a fresh connection', async () => {
    // Three pooled connections, then a receiver that reads every request and drops the connection unanswered:
    // from here that looks like a pooled connection closed under us, but it must not multiply the attempt.
    const target = sender();
    const url = `http://${NAME}:${plainPort}/`;
    await Promise.all([post(target, url), post(target, url), post(target, url)]);
    expect(plainReceiver.connections).toBe(3);
    plainReceiver.received.length = 0;
    plainReceiver.handler = (req) => req.socket.destroy();
    expect(await post(target, url)).toMatchObject({ kind: 'network_error' });
    expect(plainReceiver.received).toHaveLength(2);
    expect(plainReceiver.connections).toBe(4);
  });
});

describe('SsrfSafeSender with the name-server resolver', () => {
  // The resolver the worker uses by default, asking a name server of the test's own: what the sender makes of
  // real DNS answers, end to end.
  const dnsServer = new NameServer({
    [NAME]: { A: ['127.0.0.1'] },
    'mapped.test.example': { AAAA: ['::ffff:127.0.0.1'] },
    'mixed.test.example': { A: ['93.184.216.34'], AAAA: ['fd00::7'] },
    'hole.test.example': 'silent',
  });
  let resolve: HostResolver;

  beforeAll(async () => {
    resolve = nameServerResolver({ servers: [await dnsServer.start()], timeoutMs: 100, tries: 1 });
  });
  afterAll(() => dnsServer.stop());

  it('delivers to the address the name servers give, verifying the certificate for the name', async () => {
    const result = await post(sender({ resolve }), `https://${NAME}:${tlsPort}/hook`);
    expect(result).toEqual({ kind: 'response', status: 200 });
    expect(tlsReceiver.received).toEqual([
      expect.objectContaining({ url: '/hook', servername: NAME, remoteAddress: '127.0.0.1' }),
    ]);
  });

  it.each([
    ['mapped.test.example', '::ffff:127.0.0.1'],
    ['mixed.test.example', 'fd00::7'],
  ])('refuses %s, whose answers include %s, before connecting', async (host, address) => {
    // The production predicate, with nothing allowed beyond it.
    const isAllowedAddress = (candidate: string) => isPublicAddress(candidate, []);
    const result = await post(sender({ isAllowedAddress, resolve }), `https://${host}:${tlsPort}/`);
    expect(result).toEqual({
      kind: 'refused',
      error: `delivery refused: ${host} resolves to a non-public address`,
      address,
    });
    expect(tlsReceiver.connections).toBe(0);
  });

  it.each([
    ['nowhere.test.example', 'ENOTFOUND: no such host'],
    ['hole.test.example', 'ETIMEOUT: the name servers did not answer'],
  ])('fails the attempt to %s, to be retried, saying why', async (host, why) => {
    const result = await post(sender({ resolve }), `https://${host}:${tlsPort}/`);
    expect(result).toEqual({ kind: 'network_error', error: `could not resolve ${host}: ${why}` });
    expect(classifyOutcome(result)).toBe('retry');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('Sun, 22 Nov 2026 10:00:00 GMT');
  it.each<[string | string[] | undefined, number | undefined]>([
    [undefined, undefined],
    ['0', 0],
    ['120', 120],
    [' 30 ', 30],
    [['15', '99'], 15],
    ['Sun, 22 Nov 2026 10:00:10 GMT', 10],
    ['Sun, 22 Nov 2026 09:00:00 GMT', 0],
    ['Sunday, 22-Nov-26 10:01:00 GMT', 60],
    ['Sun Nov 22 10:00:05 2026', 5],
    ['-5', undefined],
    ['1.5', undefined],
    ['soon', undefined],
    ['', undefined],
    ['2026-11-22T10:00:10Z', undefined],
    ['99999999999999999999', Number.MAX_SAFE_INTEGER],
    ['9'.repeat(400), Number.MAX_SAFE_INTEGER],
  ])('%j -> %j', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  // Jest's process.env is its own copy, so the time zone is set for a process of its own.
  it.each(['America/New_York', 'Asia/Tokyo'])(
    'reads every HTTP-date form as GMT in the time zone %s',
    (zone) => {
      const script = `
      const ts = require('typescript');
      require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(require('fs').readFileSync(file, 'utf8'),
        { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText, file);
      const { parseRetryAfter } = require(${JSON.stringify(require.resolve('./ssrf-safe.sender'))});
      const now = Date.parse('Sun, 22 Nov 2026 10:00:00 GMT');
      console.log(JSON.stringify(['Sun Nov 22 10:00:05 2026', 'Sun Nov  2 10:00:05 2026',
        'Sun, 22 Nov 2026 10:00:10 GMT', 'Sunday, 22-Nov-26 10:01:00 GMT'].map((v) => parseRetryAfter(v, now))));`;
      const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: zone } });
      expect(JSON.parse(out.toString())).toEqual([5, 0, 10, 60]);
    },
  );
});

describe('classifyOutcome', () => {
  const response = (status: number): SendResult => ({ kind: 'response', status });
  it.each<[SendResult, string]>([
    [response(200), 'succeeded'],
    [response(201), 'succeeded'],
    [response(204), 'succeeded'],
    [response(299), 'succeeded'],
    [response(301), 'failed'],
    [response(302), 'failed'],
    [response(304), 'failed'],
    [response(307), 'failed'],
    [response(400), 'failed'],
    [response(401), 'failed'],
    [response(404), 'failed'],
    [response(410), 'failed'],
    [response(408), 'retry'],
    [response(425), 'retry'],
    [response(429), 'retry'],
    [response(500), 'retry'],
    [response(502), 'retry'],
    [response(503), 'retry'],
    [response(599), 'retry'],
    [response(100), 'failed'],
    [response(600), 'failed'],
    [{ kind: 'timeout', error: 't' }, 'retry'],
    [{ kind: 'network_error', error: 'ECONNRESET' }, 'retry'],
    [{ kind: 'refused', error: 'delivery refused' }, 'failed'],
  ])('%j -> %s', (result, expected) => {
    expect(classifyOutcome(result)).toBe(expected);
  });
});
