import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import Redis from 'ioredis';
import { Client } from 'pg';
import { closeQueue, redisOptionsFromUrl } from '@app/queue';
import { siblingDatabaseName, withAdmin } from './support/admin-database';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './support/test-env';
import { closedPort } from './support/closed-port';

// These tests send a real SIGTERM, so they run the compiled processes (built here when dist/ is stale).
const root = join(__dirname, '..');
const env = {
  ...process.env,
  NODE_ENV: 'test',
  DATABASE_URL: TEST_DATABASE_URL,
  REDIS_URL: TEST_REDIS_URL,
  LOG_LEVEL: 'info',
};

/** Starts a compiled entry point; resolves once `ready` appears in its output. */
function start(entry: string, extraEnv: Record<string, string>, ready: RegExp) {
  return startCommand(process.execPath, [join(root, entry)], extraEnv, ready);
}

/** Starts a command in the project root; resolves once `ready` appears in its output. */
function startCommand(
  command: string,
  args: string[],
  extraEnv: Record<string, string>,
  ready: RegExp,
  detached = false,
) {
  const entry = [command, ...args].join(' ');
  const child = spawn(command, args, {
    detached,
    cwd: root,
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const up = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      if (ready.test(output)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`${entry} exited with ${code}: ${output}`)));
  });
  return { child, up, exited, output: () => output };
}

/** True when a new TCP connection to the port is refused. */
const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(true));
  });

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('graceful shutdown (SIGTERM)', () => {
  let children: ChildProcess[] = [];

  beforeAll(() => {
    execFileSync(process.execPath, [join(root, 'scripts/build-if-needed.mjs')], {
      cwd: root,
      stdio: 'ignore',
    });
  }, 180_000);
  afterEach(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    children = [];
  });

  /** The compiled API on a free port (with `extraEnv`), with a new API key and one webhook of its project. */
  async function apiWithWebhook(extraEnv: Record<string, string> = {}) {
    const port = await closedPort();
    const api = start(
      'dist/apps/api/src/main.js',
      { PORT: String(port), HOST: '127.0.0.1', ...extraEnv },
      /listening on/,
    );
    children.push(api.child);
    await api.up;
    const base = `http://127.0.0.1:${port}`;
    const out = execFileSync(
      process.execPath,
      [join(root, 'dist/apps/cli/src/main.js'), 'api-keys', 'create'],
      { cwd: root, env },
    );
    const key = JSON.parse(out.toString().trim().split('\n').pop()!).api_key as string;
    const headers = { 'anchor-api-key': key, 'content-type': 'application/json' };
    const created = await fetch(`${base}/v1/webhooks`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ url: 'https://hooks.example.com/s', subscribed_events: ['task.completed'] }),
    });
    const { id } = (await created.json()) as { id: string };
    return { api, port, base, headers, id };
  }

  it('the API stops accepting, finishes its in-flight rotations, and exits 0', async () => {
    const { api, port, base, headers, id } = await apiWithWebhook();

    // Hold the webhook's row lock so that rotations are in flight (blocked inside their transaction).
    const blocker = new Client({ connectionString: TEST_DATABASE_URL });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT id FROM webhooks WHERE id = $1 FOR UPDATE', [id]);
    const rotations = [1, 2, 3].map(() =>
      fetch(`${base}/v1/webhooks/${id}/rotate-secret`, { method: 'POST', headers }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { secret: string },
      })),
    );
    // (Its own session would see one frozen snapshot of pg_stat_activity: ask from the pool of another.)
    const monitor = new Client({ connectionString: TEST_DATABASE_URL });
    await monitor.connect();
    await until(async () => {
      const rows = await monitor.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
      );
      return rows.rows[0].n >= 3;
    });
    await monitor.end();

    api.child.kill('SIGTERM');
    // New connections are refused while the in-flight requests still wait.
    await until(() => refused(port));
    // A second signal (Ctrl-C again, or one passed on by npm) does not cut the shutdown short: the rotations
    // below still get their 200 and the process exits 0.
    api.child.kill('SIGINT');
    expect(api.child.exitCode).toBeNull();

    await blocker.query('COMMIT');
    const results = await Promise.all(rotations);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(new Set(results.map((r) => r.body.secret)).size).toBe(3);
    expect(await api.exited).toBe(0);
    expect(api.output()).toMatch(/"msg":"stopped"/);

    // Each rotation committed whole: audited once, and exactly one current secret remains.
    const audited = await blocker.query(
      `SELECT count(*)::int AS n FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.rotated'`,
      [id],
    );
    expect(audited.rows[0].n).toBe(3);
    const current = await blocker.query(
      `SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1 AND state = 'current'`,
      [id],
    );
    expect(current.rows[0].n).toBe(1);
    await blocker.end();
  });

  it('a request that arrives on an open connection while the API stops gets the one 503 error body', async () => {
    const { api, port, headers } = await apiWithWebhook();

    // A connection whose request is under way (its head half sent) is not idle: SIGTERM leaves it open.
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const ended = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `GET /v1/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nanchor-api-key: ${headers['anchor-api-key']}\r\n`,
    );

    api.child.kill('SIGTERM');
    await until(() => refused(port));
    socket.write('\r\n');
    await ended;

    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 503 /);
    expect(head).toMatch(/\r\nconnection: close\r\n/i);
    expect(head).toMatch(/\r\nretry-after: 5\r\n/i);
    const requestId = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(head)?.[1];
    expect(JSON.parse(body)).toEqual({
      error: expect.any(String),
      code: 'service_unavailable',
      request_id: requestId,
    });
    expect(await api.exited).toBe(0);
  });

  it('a rotation waiting on a lock when the API is killed (SIGKILL) is rolled back, never committed later', async () => {
    const { api, base, headers, id } = await apiWithWebhook();

    const blocker = new Client({ connectionString: TEST_DATABASE_URL });
    const monitor = new Client({ connectionString: TEST_DATABASE_URL });
    await blocker.connect();
    await monitor.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM webhooks WHERE id = $1 FOR UPDATE', [id]);
      void fetch(`${base}/v1/webhooks/${id}/rotate-secret`, { method: 'POST', headers }).catch(
        () => undefined,
      );
      const waiting = async () =>
        (
          await monitor.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND datname = current_database() AND query LIKE '%rotate_webhook_secret%'`,
          )
        ).rows[0].n as number;
      await until(async () => (await waiting()) === 1);

      api.child.kill('SIGKILL');
      await api.exited;
      // Postgres notices the client is gone while the statement still waits, and cancels it.
      await until(async () => (await waiting()) === 0);
      await blocker.query('COMMIT');

      const rotated = await monitor.query(
        `SELECT count(*)::int AS n FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.rotated'`,
        [id],
      );
      expect(rotated.rows[0].n).toBe(0);
      const secrets = await monitor.query(
        `SELECT state, trigger FROM webhook_secrets WHERE webhook_id = $1`,
        [id],
      );
      expect(secrets.rows).toEqual([{ state: 'current', trigger: 'created' }]);
    } finally {
      await blocker.end();
      await monitor.end();
    }
  });

  /** The compiled worker, started, reaching Redis through `proxy`. */
  async function workerBehind(proxy: TcpProxy) {
    const worker = start(
      'dist/apps/worker/src/main.js',
      { REDIS_URL: proxy.rewrite(TEST_REDIS_URL) },
      /worker started/,
    );
    children.push(worker.child);
    await worker.up;
    return worker;
  }

  it.each([
    // Its clients are reconnecting: a Redis that is away.
    ['away', async (proxy: TcpProxy) => (proxy.cut(), until(async () => proxy.refused >= 3))],
    // Connected, answering nothing: a PING unanswered for a second, then the events reader's last read given its
    // block time and a second, and the connections are dropped.
    ['hangs', async (proxy: TcpProxy) => proxy.freeze()],
  ])('the worker exits 0 when Redis %s at shutdown', async (_how, outage) => {
    const proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    try {
      const worker = await workerBehind(proxy);
      await outage(proxy);
      worker.child.kill('SIGTERM');
      // Not 1 ("shutdown did not finish in time", after 25 s); its log tells why if it is.
      expect({ code: await worker.exited, log: worker.output() }).toMatchObject({ code: 0 });
      expect(worker.output()).toMatch(
        /Redis does not answer: closing the queues without waiting for it[\s\S]*"msg":"stopped"/,
      );
    } finally {
      await proxy.stop();
    }
  });

  it('the worker exits 0 when Redis goes away just after SIGTERM, while its queues are closing', async () => {
    const proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    try {
      const worker = await workerBehind(proxy);
      // Redis answers the shutdown's first look at it (a PING), and goes away at once, while the queues close.
      proxy.cutAfterAnswerTo('*1\r\n$4\r\nping\r\n');
      worker.child.kill('SIGTERM');
      // Not 1 ("shutdown did not finish in time", after 25 s): the queues' connections are dropped instead.
      expect({ code: await worker.exited, log: worker.output() }).toMatchObject({ code: 0 });
      expect(worker.output()).toMatch(
        /Redis went away during shutdown: closing the queues without waiting for it[\s\S]*"msg":"stopped"/,
      );
    } finally {
      await proxy.stop();
    }
  });

  it('the API exits 0 within seconds when Postgres hangs at shutdown', async () => {
    const proxy = await TcpProxy.inFrontOf(TEST_DATABASE_URL);
    try {
      const port = await closedPort();
      const api = start(
        'dist/apps/api/src/main.js',
        { DATABASE_URL: proxy.rewrite(TEST_DATABASE_URL), PORT: String(port), HOST: '127.0.0.1' },
        /listening for API key changes/,
      );
      children.push(api.child);
      await api.up;
      proxy.freeze();
      api.child.kill('SIGTERM');
      // Not 1 (the 25 s deadline): each connection waits 2 s for Postgres to close its side, then is dropped.
      expect(await api.exited).toBe(0);
      expect(api.output()).toMatch(/SIGTERM: shutting down[\s\S]*"msg":"stopped"/);
    } finally {
      await proxy.stop();
    }
  });

  it('the API answers a keyed rotation in flight and exits 0 when Postgres hangs at shutdown', async () => {
    const proxy = await TcpProxy.inFrontOf(TEST_DATABASE_URL);
    const blocker = new Client({ connectionString: TEST_DATABASE_URL });
    const monitor = new Client({ connectionString: TEST_DATABASE_URL });
    await blocker.connect();
    await monitor.connect();
    try {
      // Queries go unanswered for 8 s + 5 s before the connection is dropped.
      const { api, base, headers, id } = await apiWithWebhook({
        DATABASE_URL: proxy.rewrite(TEST_DATABASE_URL),
        DATABASE_STATEMENT_TIMEOUT_MS: '8000',
      });
      // Several pooled connections open (and idle), as in a process that has served traffic.
      await Promise.all([1, 2, 3, 4].map(() => fetch(`${base}/v1/webhooks`, { headers })));

      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM webhooks WHERE id = $1 FOR UPDATE', [id]);
      const rotation = fetch(`${base}/v1/webhooks/${id}/rotate-secret`, {
        method: 'POST',
        headers: { ...headers, 'idempotency-key': 'hung-at-shutdown' },
      }).then((r) => r.status);
      await until(
        async () =>
          (
            await monitor.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity
                WHERE wait_event_type = 'Lock' AND datname = current_database() AND query LIKE '%rotate_webhook_secret%'`,
            )
          ).rows[0].n === 1,
      );
      proxy.freeze();
      api.child.kill('SIGTERM');
      // The rotation's query goes unanswered and fails (503); giving its key back does not hold that answer up,
      // nor the shutdown (not 1, the 25 s deadline): its claim is left to turn stale.
      expect(await rotation).toBe(503);
      expect({ code: await api.exited, log: api.output() }).toMatchObject({ code: 0 });
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end();
      await monitor.end();
      await proxy.stop();
    }
  }, 60_000);

  it('the worker closes its queues and exits 0', async () => {
    const worker = start('dist/apps/worker/src/main.js', {}, /worker started/);
    children.push(worker.child);
    await worker.up;
    worker.child.kill('SIGTERM');
    // Sent once the SIGTERM is taken (two signals pending at once are delivered lowest number first, SIGINT first).
    await until(async () => /SIGTERM: shutting down/.test(worker.output()));
    worker.child.kill('SIGINT'); // changes nothing: the shutdown runs on
    expect(await worker.exited).toBe(0);
    expect(worker.output()).toMatch(/SIGTERM: shutting down[\s\S]*"msg":"stopped"/);
    expect(worker.output()).not.toMatch(/SIGINT: shutting down/);
  });

  // A container runs `npm run start:api` / `start:worker` as its first process, so the orchestrator's SIGTERM goes
  // to npm, which passes it on to the script's shell only: the process has to replace that shell (exec), or it
  // never hears of the shutdown, npm exits 143 and the container's end kills the process outright.
  it.each([
    ['start:api', /listening on/],
    ['start:worker', /worker started/],
  ])(
    '`npm run %s` passes SIGTERM on to the process, which shuts down and exits 0',
    async (script, ready) => {
      const port = await closedPort();
      const proc = startCommand(
        'npm',
        ['run', script],
        { PORT: String(port), HOST: '127.0.0.1', WORKER_HEARTBEAT_FILE: join(tmpdir(), `hb-${port}`) },
        ready,
      );
      children.push(proc.child);
      await proc.up;
      const pid = Number(/"pid":(\d+)/.exec(proc.output())![1]);
      expect(pid).not.toBe(proc.child.pid);
      try {
        proc.child.kill('SIGTERM');
        expect(await proc.exited).toBe(0);
        expect(proc.output()).toMatch(/SIGTERM: shutting down[\s\S]*"msg":"stopped"/);
        expect(() => process.kill(pid, 0)).toThrow();
      } finally {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
    30_000,
  );

  // SIGTERM to npm alone, which passes it on; and Ctrl-C in a terminal, SIGINT to the whole foreground process
  // group: the tail hears it from the terminal and once more from npm. That second one used to find no handler left
  // and kill the tail before it had destroyed its group (exit 130, the group and its heartbeat left on the stream).
  it.each([
    ['passes SIGTERM on to the tail, which', 'SIGTERM', false],
    ['stopped by Ctrl-C (SIGINT to its process group)', 'SIGINT', true],
  ] as const)(
    '`npm run cli -- audit tail` %s destroys its group and exits 0',
    async (_case, signal, toGroup) => {
      const stream = `shutdown-tail-${randomUUID()}`;
      const redis = new Redis(TEST_REDIS_URL);
      const groups = async () => ((await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[]).length;
      // Its own process group, so that whatever npm started can be cleaned up even if npm is gone.
      const tail = startCommand(
        'npm',
        ['run', 'cli', '--', 'audit', 'tail'],
        { AUDIT_STREAM: stream },
        /^/,
        true,
      );
      children.push(tail.child);
      tail.up.catch(() => undefined); // it prints nothing until an event comes; its exit is checked below
      try {
        await until(async () => (await groups()) === 1);
        if (toGroup) process.kill(-tail.child.pid!, signal);
        else tail.child.kill(signal);
        expect(await tail.exited).toBe(0);
        await until(async () => (await groups()) === 0, 5_000);
        expect(await redis.keys(`${stream}:tails:*`)).toEqual([]);
      } finally {
        try {
          process.kill(-tail.child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
        await redis.del(stream);
        redis.disconnect();
      }
    },
    30_000,
  );
});

describe('a database that does not exist yet when the API starts', () => {
  it('says to run migrate, and the API serves once migrate has run', async () => {
    // A database of this run's own, named like the test database (`…_test`), so that no run can drop another's.
    const name = siblingDatabaseName('shutdown_unmigrated');
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    const drop = () => withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    await drop();
    const port = await closedPort();
    const api = start(
      'dist/apps/api/src/main.js',
      { PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: url.toString() },
      /does not exist \(run `migrate` first: it creates the database\)/,
    );
    try {
      await api.up;
      execFileSync(process.execPath, [join(root, 'dist/apps/cli/src/main.js'), 'migrate'], {
        cwd: root,
        env: { ...env, DATABASE_URL: url.toString() },
        stdio: 'ignore',
      });
      await until(async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200, 30_000);
    } finally {
      api.child.kill('SIGKILL');
      await drop();
    }
  }, 60_000);
});

describe('Redis unreachable when the API starts', () => {
  // The API started and answered 503 without a word in its log about Redis (a wrong host, a rediss:// URL for a
  // server without TLS, REDIS_CLUSTER=true for a single server), where Postgres gets a warning naming the reason.
  it('says so in its log, with the reason, and says when Redis answers', async () => {
    const proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    proxy.cut();
    const port = await closedPort();
    const api = start(
      'dist/apps/api/src/main.js',
      { PORT: String(port), HOST: '127.0.0.1', REDIS_URL: proxy.rewrite(TEST_REDIS_URL) },
      /Redis is unreachable, retrying in the background: \S/,
    );
    try {
      await api.up;
      proxy.restore();
      await until(async () => /connected to Redis/.test(api.output()), 15_000);
      // One line for the spell, not one per reconnection attempt.
      expect(api.output().match(/Redis is unreachable/g)).toHaveLength(1);
    } finally {
      api.child.kill('SIGKILL');
      await proxy.stop();
    }
  }, 30_000);
});

describe('closing a queue while Redis hangs', () => {
  // A worker's delivery queue exists once it has queued an attempt or checked for a lost one: its close used to
  // wait for an answer to QUIT for as long as Redis hung, past the shutdown deadline (exit 1).
  it('drops the connection instead of waiting for an answer to QUIT', async () => {
    const proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    const url = new URL(proxy.rewrite(TEST_REDIS_URL));
    const queue = new Queue('close-while-hanging', {
      connection: { host: url.hostname, port: Number(url.port), db: Number(url.pathname.slice(1) || 0) },
    });
    try {
      await queue.waitUntilReady();
      proxy.freeze();
      const gaveUp = new Promise<false>((resolve) => setTimeout(() => resolve(false), 10_000).unref());
      expect(await Promise.race([closeQueue(queue, 500).then(() => true), gaveUp])).toBe(true);
      const client = await queue.client;
      await until(async () => client.status === 'end', 5000); // dropped, not reconnecting
    } finally {
      (await queue.client).disconnect();
      await proxy.stop();
    }
  });
});

describe('closing a worker whose connection for blocking reads waits to reconnect', () => {
  // Redis is back after an outage, but the worker's client for blocking reads is still waiting out its retry
  // delay. BullMQ waits for that client's `end` when the worker closes, which ioredis 5 never emitted for a client
  // waiting to reconnect: the worker never finished closing, and the process waited out its shutdown deadline.
  it('closes, and the client ends instead of reconnecting', async () => {
    const proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    const connection = { ...redisOptionsFromUrl(proxy.rewrite(TEST_REDIS_URL)), retryStrategy: () => 3000 };
    const worker = new Worker(`close-while-reconnecting-${randomUUID()}`, async () => undefined, {
      connection,
    });
    worker.on('error', () => undefined);
    const { blockingConnection } = worker as unknown as { blockingConnection: { client: Promise<Redis> } };
    try {
      await worker.waitUntilReady();
      const blocking = await blockingConnection.client;
      await until(async () => blocking.status === 'ready'); // the worker's main loop waits for a job on it
      const reconnecting = new Promise((resolve) => blocking.once('reconnecting', resolve));
      proxy.cut();
      await reconnecting;
      proxy.restore(); // Redis answers again; the client tries again in 3 s
      const gaveUp = new Promise<false>((resolve) => setTimeout(() => resolve(false), 20_000).unref());
      expect(await Promise.race([worker.close().then(() => true), gaveUp])).toBe(true);
      expect(blocking.status).toBe('end');
    } finally {
      await proxy.stop();
    }
  }, 40_000);
});

describe('a Redis database the server does not have', () => {
  // ioredis would log its failed SELECT and carry on in database 0: the processes must stop instead. No Redis
  // is configured with a million databases (16 by default).
  const missing = () => {
    const url = new URL(TEST_REDIS_URL);
    url.pathname = '/999999';
    return url.toString();
  };
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const c of started.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it.each([
    ['api', 'dist/apps/api/src/main.js'],
    ['worker', 'dist/apps/worker/src/main.js'],
  ])('stops the %s with exit code 1, naming the problem', async (name, entry) => {
    const port = await closedPort();
    const proc = start(entry, { PORT: String(port), HOST: '127.0.0.1', REDIS_URL: missing() }, /never/);
    started.push(proc.child);
    proc.up.catch(() => undefined);
    expect(await proc.exited).toBe(1);
    expect(proc.output()).toContain(`${name} cannot start: REDIS_URL names database 999999`);
    // A bad value, said in one line: no stack trace of where the check threw.
    expect(proc.output()).not.toContain('"stack"');
  });
});

describe('a WORKER_HEARTBEAT_FILE the worker cannot write', () => {
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const c of started.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('stops the worker with exit code 1, naming the file, instead of running with a health check that never passes', async () => {
    const file = join(tmpdir(), `no-such-directory-${process.pid}`, 'worker.alive');
    const proc = start('dist/apps/worker/src/main.js', { WORKER_HEARTBEAT_FILE: file }, /never/);
    started.push(proc.child);
    proc.up.catch(() => undefined);
    expect(await proc.exited).toBe(1);
    expect(proc.output()).toContain(`worker cannot start: WORKER_HEARTBEAT_FILE ${file} cannot be written`);
    expect(proc.output()).not.toContain('"stack"');
  });
});

describe('an address the API cannot listen on', () => {
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const c of started.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('stops the API with exit code 1 when the port is taken, naming HOST and PORT, without a stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const proc = start('dist/apps/api/src/main.js', { PORT: String(port), HOST: '127.0.0.1' }, /never/);
      started.push(proc.child);
      proc.up.catch(() => undefined);
      expect(await proc.exited).toBe(1);
      expect(proc.output()).toContain(`api cannot start: cannot listen on HOST 127.0.0.1, PORT ${port}`);
      expect(proc.output()).not.toContain('"stack"');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('names the port it really listens on when PORT=0 lets the system pick one', async () => {
    const proc = start('dist/apps/api/src/main.js', { PORT: '0', HOST: '127.0.0.1' }, /listening on/);
    started.push(proc.child);
    await proc.up;
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(proc.output())?.[1]);
    expect(port).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
  });

  it('stops the API with exit code 1 when HOST is not an address of this machine', async () => {
    // TEST-NET-3 (RFC 5737): never assigned to a host.
    const proc = start(
      'dist/apps/api/src/main.js',
      { PORT: String(await closedPort()), HOST: '203.0.113.7' },
      /never/,
    );
    started.push(proc.child);
    proc.up.catch(() => undefined);
    expect(await proc.exited).toBe(1);
    expect(proc.output()).toContain('api cannot start: cannot listen on HOST 203.0.113.7');
    expect(proc.output()).not.toContain('"stack"');
  });
});

describe('invalid configuration', () => {
  beforeAll(() => {
    execFileSync(process.execPath, [join(root, 'scripts/build-if-needed.mjs')], {
      cwd: root,
      stdio: 'ignore',
    });
  }, 180_000);

  it.each([
    ['api', 'dist/apps/api/src/main.js'],
    ['worker', 'dist/apps/worker/src/main.js'],
  ])(
    'stops the %s with exit code 1, listing every problem in one message on stderr',
    async (_name, entry) => {
      const child = spawn(process.execPath, [join(root, entry)], {
        cwd: root,
        env: { ...env, PORT: 'eighty', MAX_WEBHOOKS_PER_PROJECT: '0', LOG_LEVEL: 'loud' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
      const [head, ...problems] = stderr.trim().split('\n');
      expect(head).toBe('Invalid configuration:');
      expect(problems).toHaveLength(3);
      for (const name of ['PORT', 'MAX_WEBHOOKS_PER_PROJECT', 'LOG_LEVEL']) {
        expect(problems.filter((p) => p.startsWith(`  - ${name} `))).toHaveLength(1);
      }
    },
  );
});
