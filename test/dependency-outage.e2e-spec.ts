import { Client } from 'pg';
import { runMigrations } from '@app/persistence';
import { siblingDatabaseName, withAdmin } from './support/admin-database';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './support/test-env';

describe('dependencies down and back', () => {
  let pgProxy: TcpProxy;
  let redisProxy: TcpProxy;
  let api: RunningApi;
  let key: string;

  beforeAll(async () => {
    pgProxy = await TcpProxy.inFrontOf(TEST_DATABASE_URL);
    redisProxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    api = await startApi({
      env: {
        DATABASE_URL: pgProxy.rewrite(TEST_DATABASE_URL),
        REDIS_URL: redisProxy.rewrite(TEST_REDIS_URL),
      },
    });
    ({ key } = await api.newKey());
  });
  afterAll(async () => {
    pgProxy.restore();
    redisProxy.restore();
    await api.close();
    await pgProxy.stop();
    await redisProxy.stop();
  });

  it('answers 503 service_unavailable while Postgres is unreachable, and recovers by itself', async () => {
    // A project of its own: the list at the end must hold this test's webhook only, whichever tests ran before.
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/a', subscribed_events: ['task.completed'] },
    });
    expect(created.status).toBe(201);

    pgProxy.cut();
    for (const call of [
      () => api.http.get('/v1/webhooks', { key }),
      () =>
        api.http.post('/v1/webhooks', {
          key,
          body: { url: 'https://hooks.example.com/b', subscribed_events: ['task.failed'] },
        }),
      () => api.http.post(`/v1/webhooks/${created.body.id}/rotate-secret`, { key }),
    ]) {
      const res = await call();
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('service_unavailable');
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.text).not.toMatch(/at .*\.(ts|js):\d+|SELECT|INSERT|ECONNREFUSED|stack/i);
    }
    const ready = await api.http.get('/health/ready');
    expect(ready.status).toBe(503);
    expect((await api.http.get('/health/live')).status).toBe(200);

    pgProxy.restore();
    await eventually(async () => (await api.http.get('/v1/webhooks', { key })).status === 200);
    const list = await api.http.get('/v1/webhooks', { key });
    expect(list.body.webhooks.map((w: { id: string }) => w.id)).toEqual([created.body.id]);
    await eventually(async () => (await api.http.get('/health/ready')).status === 200);
  });

  it('gives back the Idempotency-Key of a request that Postgres failed as soon as it answers again', async () => {
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/idem-outage', subscribed_events: ['task.completed'] },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const rotate = () =>
      api.http.post(`/v1/webhooks/${id}/rotate-secret`, {
        key,
        headers: { 'idempotency-key': 'outage-release' },
      });
    // Straight to Postgres, not through the proxy: holds the webhook so the rotation waits, after its claim.
    const holder = new Client({ connectionString: TEST_DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM webhooks WHERE id = $1 FOR UPDATE', [id]);
      const first = rotate();
      await eventually(async () => {
        // Asked outside the holder's transaction, which would keep seeing its first snapshot of the view.
        const [row] = await api.db.dataSource.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'
              AND query LIKE 'SELECT * FROM rotate_webhook_secret(%'`,
        );
        return row.n === 1;
      });
      // Postgres goes away under it: the rotation fails, and so does giving its key back.
      pgProxy.cut();
      expect((await first).status).toBe(503);
      await holder.query('ROLLBACK');
      pgProxy.restore();
      // The key comes back once Postgres answers, not when its claim turns stale a minute later.
      await eventually(
        async () =>
          (await holder.query('SELECT 1 FROM idempotency_keys WHERE key = $1', ['outage-release']))
            .rowCount === 0,
        15_000,
        'the claim given back',
      );
      const retried = await rotate();
      expect(retried.status).toBe(200);
      const rotations = await holder.query(
        "SELECT 1 FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.rotated'",
        [id],
      );
      expect(rotations.rowCount).toBe(1);
    } finally {
      await holder.end();
    }
  });

  it('reports not ready while Redis is unreachable, keeps committing changes, and recovers', async () => {
    redisProxy.cut();
    await eventually(async () => (await api.http.get('/health/ready')).status === 503);
    const res = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/c', subscribed_events: ['task.completed'] },
    });
    expect(res.status).toBe(201);
    redisProxy.restore();
    await eventually(async () => (await api.http.get('/health/ready')).status === 200);
  });

  it('answers a test event 503 while Redis is unreachable, recording nothing, whether or not its queue ever connected', async () => {
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/d', subscribed_events: ['task.completed'] },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const sendTest = () =>
      api.http.post(`/v1/webhooks/${id}/test`, { key, body: { event_type: 'task.completed' } });
    const expectUnavailable = async () => {
      const res = await sendTest();
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('service_unavailable');
      expect(res.headers.get('retry-after')).toBe('5');
    };

    // The delivery queue has not connected yet in this process: BullMQ alone would wait for Redis.
    redisProxy.cut();
    await expectUnavailable();
    redisProxy.restore();
    await eventually(async () => (await sendTest()).status === 202);

    // Connected once, then Redis goes away (and the API has noticed).
    redisProxy.cut();
    await eventually(async () => (await api.http.get('/health/ready')).status === 503);
    await expectUnavailable();
    redisProxy.restore();
    await eventually(async () => (await api.http.get('/health/ready')).status === 200);

    const log = await api.http.get(`/v1/webhooks/${id}/events`, { key });
    expect(log.status).toBe(200);
    expect(log.body.pagination.total).toBe(1);
  });

  it('answers not ready and 503 instead of hanging while Redis hangs, and recovers', async () => {
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/frozen', subscribed_events: ['task.completed'] },
    });
    const id = created.body.id as string;
    const sendTest = () =>
      api.http.post(`/v1/webhooks/${id}/test`, { key, body: { event_type: 'task.completed' } });
    expect((await sendTest()).status).toBe(202); // the delivery queue has connected
    redisProxy.freeze();
    try {
      const ready = await api.http.get('/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.checks.details.redis).toEqual({ status: 'down', message: 'timed out' });
      const test = await sendTest();
      expect({ status: test.status, code: test.body.code }).toEqual({
        status: 503,
        code: 'service_unavailable',
      });
      const metrics = (await api.http.get('/metrics')).text;
      expect(metrics).toMatch(/^metrics_source_up\{source="redis"\} 0$/m);
    } finally {
      redisProxy.restore();
    }
    await eventually(async () => (await api.http.get('/health/ready')).status === 200);
    await eventually(async () => (await sendTest()).status === 202);
  });

  it('drops Redis connections that go silent without closing, and recovers by itself on new ones', async () => {
    expect((await api.http.get('/health/ready')).status).toBe(200);
    // Every open connection (the shared client's, the delivery queue's) now passes nothing, while new ones work:
    // a Redis that failed over behind a proxy that keeps the old connections open.
    redisProxy.orphan();
    expect((await api.http.get('/health/ready')).status).toBe(503);
    // Within the socket timeout (20 s) of a command left unanswered, the connection is dropped and opened anew.
    await eventually(async () => (await api.http.get('/health/ready')).status === 200, 60_000, 'ready again');
  }, 90_000);

  describe('Postgres unreachable when the API starts', () => {
    it('starts anyway: live, not ready, 503 on the routes; connects by itself once Postgres answers', async () => {
      const proxy = await TcpProxy.inFrontOf(TEST_DATABASE_URL);
      proxy.cut();
      const late = await startApi({ env: { DATABASE_URL: proxy.rewrite(TEST_DATABASE_URL) } });
      try {
        expect((await late.http.get('/health/live')).status).toBe(200);
        expect((await late.http.get('/health/ready')).status).toBe(503);
        const res = await late.http.get('/v1/webhooks', { key: 'ak_anything' });
        expect({ status: res.status, code: res.body.code }).toEqual({
          status: 503,
          code: 'service_unavailable',
        });
        expect(res.headers.get('retry-after')).toBe('5');
        const sourceUp = async () =>
          /^metrics_source_up\{source="postgres"\} (\d)$/m.exec((await late.http.get('/metrics')).text)?.[1];
        expect(await sourceUp()).toBe('0');
        // No made-up values while Postgres cannot be read: a 0 lag would hide the relay-lag alert.
        const metrics = (await late.http.get('/metrics')).text;
        expect(metrics).toContain('# TYPE audit_relay_lag_seconds gauge');
        expect(metrics).not.toMatch(
          /^(audit_relay_lag_seconds|audit_outbox_pending|webhook_secret_rotations)\b/m,
        );
        proxy.restore();
        await eventually(async () => (await late.http.get('/health/ready')).status === 200, 30_000);
        await eventually(async () => (await sourceUp()) === '1');
        expect((await late.http.get('/metrics')).text).toMatch(/^audit_relay_lag_seconds \d/m);
        const k = await late.newKey();
        expect((await late.http.get('/v1/webhooks', { key: k.key })).status).toBe(200);
      } finally {
        proxy.restore();
        await late.close();
        await proxy.stop();
      }
    });
  });

  describe('a database whose migrations are not all applied', () => {
    const name = siblingDatabaseName('unmigrated');
    const url = (() => {
      const u = new URL(TEST_DATABASE_URL);
      u.pathname = `/${name}`;
      return u.toString();
    })();
    const dropDatabase = () =>
      withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    const readiness = async (on: RunningApi) => {
      const res = await on.http.get('/health/ready');
      return { status: res.status, migrations: res.body.checks?.error?.migrations?.message };
    };

    it('is not ready, and the probe only reads: it creates nothing in the database', async () => {
      await dropDatabase();
      await withAdmin((admin) => admin.query(`CREATE DATABASE "${name}"`));
      const unmigrated = await startApi({ env: { DATABASE_URL: url } });
      const db = new Client({ connectionString: url });
      await db.connect();
      try {
        expect(await readiness(unmigrated)).toEqual({ status: 503, migrations: 'pending migrations' });
        // A probe that created the migrations table would race the `migrate` job creating it.
        const tables = await db.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`);
        expect(tables.rows).toEqual([]);
        await runMigrations(url);
        expect((await readiness(unmigrated)).status).toBe(200);
        const [{ name: last }] = (
          await db.query(
            'DELETE FROM typeorm_migrations WHERE id = (SELECT max(id) FROM typeorm_migrations) RETURNING name',
          )
        ).rows as { name: string }[];
        expect(last).toMatch(/^\w+\d{13}$/);
        expect(await readiness(unmigrated)).toEqual({ status: 503, migrations: 'pending migrations' });
      } finally {
        await db.end();
        await unmigrated.close();
        await dropDatabase();
      }
    });
  });

  describe('Postgres slow or hanging with queries in flight', () => {
    let proxy: TcpProxy;
    let slow: RunningApi;
    let slowKey: string;

    beforeAll(async () => {
      proxy = await TcpProxy.inFrontOf(TEST_DATABASE_URL);
      slow = await startApi({
        env: { DATABASE_URL: proxy.rewrite(TEST_DATABASE_URL), DATABASE_STATEMENT_TIMEOUT_MS: '1500' },
      });
      ({ key: slowKey } = await slow.newKey());
    });
    afterAll(async () => {
      proxy.restore();
      await slow.close();
      await proxy.stop();
    });

    const expectUnavailable = (res: { status: number; body: { code?: string }; headers: Headers }) => {
      expect({ status: res.status, code: res.body.code }).toEqual({
        status: 503,
        code: 'service_unavailable',
      });
      expect(res.headers.get('retry-after')).toBe('5');
    };

    it('cancels a rotation stuck behind a row lock (503, nothing half-done) and rotates once the lock is gone', async () => {
      const created = await slow.http.post('/v1/webhooks', {
        key: slowKey,
        body: { url: 'https://hooks.example.com/locked', subscribed_events: ['task.completed'] },
      });
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      const history = async () =>
        (
          await slow.db.dataSource.query<{ type: string }[]>(
            `SELECT type FROM audit_events WHERE webhook_id = $1 ORDER BY seq`,
            [id],
          )
        ).map((r) => r.type);
      const before = await history();

      // Another session holds the webhook's row lock and does not let go: a stalled transaction elsewhere.
      const holder = new Client({ connectionString: TEST_DATABASE_URL });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT 1 FROM webhooks WHERE id = $1 FOR UPDATE', [id]);
        expectUnavailable(await slow.http.post(`/v1/webhooks/${id}/rotate-secret`, { key: slowKey }));
        // Reads do not wait for the lock.
        expect((await slow.http.get(`/v1/webhooks/${id}`, { key: slowKey })).status).toBe(200);
      } finally {
        await holder.query('ROLLBACK');
        await holder.end();
      }
      expect(await history()).toEqual(before);
      const rotated = await slow.http.post(`/v1/webhooks/${id}/rotate-secret`, { key: slowKey });
      expect(rotated.status).toBe(200);
      expect(await history()).toEqual([...before, 'webhook.secret.rotated']);
    });

    it('gives back an Idempotency-Key whose claim committed but whose answer was lost, once Postgres answers', async () => {
      const created = await slow.http.post('/v1/webhooks', {
        key: slowKey,
        body: { url: 'https://hooks.example.com/lost-claim', subscribed_events: ['task.completed'] },
      });
      expect(created.status).toBe(201);
      const idempotencyKey = `lost-claim-${Date.now()}`;
      // Straight to Postgres, not through the proxy.
      const observer = new Client({ connectionString: TEST_DATABASE_URL });
      await observer.connect();
      try {
        const count = async (sql: string, params: unknown[] = []) =>
          Number((await observer.query<{ n: number }>(sql, params)).rows[0].n);
        const claims = () =>
          count(`SELECT count(*)::int AS n FROM idempotency_keys WHERE project_id = $1 AND key = $2`, [
            created.body.project_id,
            idempotencyKey,
          ]);
        const rotate = () =>
          slow.http.post(`/v1/webhooks/${created.body.id}/rotate-secret`, {
            key: slowKey,
            headers: { 'idempotency-key': idempotencyKey },
          });
        // Another session inserts the same key and does not commit: the API's claim waits for it.
        const holder = new Client({ connectionString: TEST_DATABASE_URL });
        await holder.connect();
        let first: ReturnType<typeof rotate>;
        try {
          await holder.query('BEGIN');
          await holder.query(
            `INSERT INTO idempotency_keys (project_id, key, request_hash, state, created_at, expires_at)
             VALUES ($1, $2, 'held', 'pending', now(), now() + interval '1 day')`,
            [created.body.project_id, idempotencyKey],
          );
          first = rotate();
          await eventually(
            async () =>
              (await count(
                `SELECT count(*)::int AS n FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'
                    AND query LIKE 'INSERT INTO idempotency_keys%'`,
              )) === 1,
            10_000,
            'the claim to wait',
          );
          // Its answer will not get through; then the other session gives way, and the claim commits.
          proxy.freeze();
        } finally {
          await holder.query('ROLLBACK');
          await holder.end();
        }
        try {
          await eventually(async () => (await claims()) === 1, 10_000, 'the claim to commit');
          expectUnavailable(await first);
        } finally {
          proxy.restore();
        }
        // Given back as soon as Postgres answers (not a minute later, when the claim would turn stale): a retry
        // runs at once, and rotates once.
        await eventually(async () => (await claims()) === 0, 15_000, 'the key to be given back');
        const retried = await rotate();
        expect(retried.status).toBe(200);
        expect((await rotate()).headers.get('idempotent-replayed')).toBe('true');
        // One rotation in all: the request whose answer was lost changed nothing, the replay nothing either.
        expect(
          await count(
            `SELECT count(*)::int AS n FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.rotated'`,
            [created.body.id],
          ),
        ).toBe(1);
      } finally {
        await observer.end();
      }
    });

    it('answers 503 and keeps running when new connections are logged in and then get no answer, and recovers', async () => {
      // No connection to reuse: the requests below need new ones, which the server logs in and then leaves
      // unanswered (the session setup that follows the login gets no answer).
      proxy.cut();
      proxy.restore();
      proxy.freezeAfterLogin();
      try {
        const answers = await Promise.all(
          Array.from({ length: 12 }, () => slow.http.get('/v1/webhooks', { key: slowKey })),
        );
        for (const res of answers) expectUnavailable(res);
      } finally {
        proxy.restore();
      }
      // Still running, and serving once Postgres answers again.
      await eventually(async () => (await slow.http.get('/health/ready')).status === 200);
      expect((await slow.http.get('/v1/webhooks', { key: slowKey })).status).toBe(200);
    });

    it('answers 503 instead of hanging while Postgres hangs with queries in flight, and recovers', async () => {
      const created = await slow.http.post('/v1/webhooks', {
        key: slowKey,
        body: { url: 'https://hooks.example.com/hang', subscribed_events: ['task.completed'] },
      });
      expect(created.status).toBe(201);
      proxy.freeze();
      try {
        // Pooled connections are open: the queries go out and no answer comes back.
        const answers = await Promise.all([
          slow.http.get('/v1/webhooks', { key: slowKey }),
          slow.http.get(`/v1/webhooks/${created.body.id}`, { key: slowKey }),
          slow.http.post(`/v1/webhooks/${created.body.id}/rotate-secret`, { key: slowKey }),
        ]);
        for (const res of answers) expectUnavailable(res);
        expect((await slow.http.get('/health/ready')).status).toBe(503);
      } finally {
        proxy.restore();
      }
      await eventually(async () => (await slow.http.get('/health/ready')).status === 200);
      const list = await slow.http.get('/v1/webhooks', { key: slowKey });
      expect(list.status).toBe(200);
      expect(list.body.webhooks.map((w: { id: string }) => w.id)).toContain(created.body.id);
    });
  });
});
