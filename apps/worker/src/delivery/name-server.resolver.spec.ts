import { execFileSync } from 'node:child_process';
import { promises as dns } from 'node:dns';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NameServer } from '../../../../test/support/name-server';
import { nameServerResolver } from './name-server.resolver';

const server = new NameServer({
  'dual.receiver.example': { A: ['93.184.216.34', '93.184.216.35'], AAAA: ['2606:2800:220:1::1'] },
  'v4.receiver.example': { A: ['93.184.216.36'] },
  'v6.receiver.example': { AAAA: ['2606:2800:220:1::2'] },
  'empty.receiver.example': {},
  'broken.receiver.example': 'SERVFAIL',
  'hole.receiver.example': 'silent',
});
let servers: string[];

beforeAll(async () => {
  servers = [await server.start()];
});
afterAll(() => server.stop());

const resolverOf = () => nameServerResolver({ servers, timeoutMs: 100, tries: 1 });

describe('nameServerResolver', () => {
  it('asks A and AAAA and returns every address, IPv4 first', async () => {
    expect(await resolverOf()('dual.receiver.example')).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '93.184.216.35', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
  });

  it('resolves a fully qualified name (trailing dot) as the name', async () => {
    expect(await resolverOf()('v4.receiver.example.')).toEqual([{ address: '93.184.216.36', family: 4 }]);
  });

  it('resolves a name with addresses of one family only to those', async () => {
    expect(await resolverOf()('v4.receiver.example')).toEqual([{ address: '93.184.216.36', family: 4 }]);
    expect(await resolverOf()('v6.receiver.example')).toEqual([{ address: '2606:2800:220:1::2', family: 6 }]);
  });

  it.each([
    ['empty.receiver.example', 'ENODATA', 'no addresses'],
    ['nowhere.receiver.example', 'ENOTFOUND', 'no such host'],
    ['broken.receiver.example', 'ESERVFAIL', 'the name servers failed to answer'],
    ['hole.receiver.example', 'ETIMEOUT', 'the name servers did not answer'],
  ])('fails %s with %s and a message for the delivery log', async (name, code, message) => {
    await expect(resolverOf()(name)).rejects.toMatchObject({ code, message });
  });

  it('gives every try the same time to answer, so three tries of 2 s fit in an attempt', async () => {
    // c-ares doubles its wait on each try of its own (400, 800, 1,600, 3,200 and 6,400 ms here, 12.4 s in all; 2, 4
    // and 8 s by default, past the attempt's 10 s): a try here waits timeoutMs, however many came before. Node checks
    // c-ares' timeouts on a tick of that period, so a try may take up to twice its timeout: 4 s for the five. The
    // bound between the two leaves seconds to spare either way, for a busy machine.
    const asked = () => server.asked.filter((query) => query === 'A hole.receiver.example').length;
    const before = asked();
    const started = Date.now();
    await expect(
      nameServerResolver({ servers, timeoutMs: 400, tries: 5 })('hole.receiver.example'),
    ).rejects.toMatchObject({ code: 'ETIMEOUT', message: 'the name servers did not answer' });
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(asked() - before).toBe(5);
  });

  it('reports unreachable name servers', async () => {
    // A UDP port nothing listens on: the kernel answers port unreachable, or nothing at all.
    const closed = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
    const port = closed.address().port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const resolve = nameServerResolver({ servers: [`127.0.0.1:${port}`], timeoutMs: 100, tries: 1 });
    await expect(resolve('v4.receiver.example')).rejects.toMatchObject({
      code: expect.stringMatching(/^(ECONNREFUSED|ETIMEOUT)$/),
    });
  });

  it('asks the name servers about localhost instead of reading /etc/hosts', async () => {
    await expect(resolverOf()('localhost')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(server.asked).toEqual(expect.arrayContaining(['A localhost', 'AAAA localhost']));
  });

  it("answers while every thread of libuv's pool is held, which the system resolver cannot", async () => {
    // Each open of a FIFO for reading holds a pool thread until a writer opens it: the pool is full, the way
    // lookups that no name server answers fill it.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resolver-'));
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const threads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
    const held = Array.from(
      { length: threads },
      () =>
        new Promise<number>((resolve, reject) =>
          fs.open(fifo, 'r', (e, fd) => (e ? reject(e) : resolve(fd))),
        ),
    );
    let systemAnswered = false;
    // Queued behind the held threads, so it cannot run before one is let go.
    const system = dns.lookup('localhost').then(() => (systemAnswered = true));
    try {
      expect(await resolverOf()('dual.receiver.example')).toHaveLength(3);
      expect(systemAnswered).toBe(false);
    } finally {
      // Read and write: never blocks, and lets every open for reading through, those still queued for a thread
      // (one busy with other work of this process) included, for as long as it stays open.
      const writer = fs.openSync(fifo, 'r+');
      for (const fd of await Promise.all(held)) fs.closeSync(fd);
      fs.closeSync(writer);
      await system;
      fs.rmSync(dir, { recursive: true });
    }
    expect(systemAnswered).toBe(true);
  });
});
