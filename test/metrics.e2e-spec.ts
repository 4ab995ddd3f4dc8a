import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { Client } from 'pg';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './support/test-env';
import { loadConfig } from '@app/config';
import { ManualClock } from '@app/domain';
import { sharedHistoryCountsKey } from '../apps/api/src/observability/shared-history.counts';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';

describe('GET /metrics', () => {
  let api: RunningApi;
  // Scrape-time reads are cached for two seconds of this clock: the tests move it instead of waiting.
  const clock = new ManualClock();

  beforeAll(async () => {
    api = await startApi({ env: { ADMIN_TOKEN }, clock });
  });
  afterAll(() => api.close());

  const value = (text: string, series: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it('exposes process, HTTP, rotation, outbox and queue series without authentication', async () => {
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/m', subscribed_events: ['task.completed'] },
    });
    await api.http.post(`/v1/webhooks/${created.body.id}/rotate-secret`, { key });
    await api.http.get(`/v1/webhooks/${'x'.repeat(600)}`, { key });
    // Scrape-time reads are cached for two seconds; past that, this scrape sees the rotation.
    clock.advance(2100);

    const res = await api.http.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = res.text;
    expect(
      value(text, 'http_requests_total{method="POST",route="/v1/webhooks",status="201"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(
      value(text, 'http_requests_total{method="GET",route="/v1/webhooks/:id",status="404"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(text).toContain(
      'http_request_duration_seconds_bucket{le="0.05",method="POST",route="/v1/webhooks/:id/rotate-secret",status="200"}',
    );
    expect(value(text, 'webhook_secret_rotations{trigger="manual"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'webhook_secret_rotations{trigger="scheduled"}')).toBeGreaterThanOrEqual(0);
    // Every status has a sample, 0 included, so that an alert on one of them is never "no data".
    for (const status of ['pending', 'succeeded', 'failed', 'dead']) {
      expect(value(text, `webhook_deliveries{status="${status}"}`)).toBeGreaterThanOrEqual(0);
    }
    // Nothing relays the outbox in this test (no worker): the events just written are pending.
    expect(value(text, 'audit_outbox_pending')).toBeGreaterThanOrEqual(2);
    expect(value(text, 'audit_relay_lag_seconds')).toBeGreaterThanOrEqual(0);
    for (const queue of ['rotation', 'audit', 'delivery', 'housekeeping']) {
      expect(value(text, `queue_jobs{queue="${queue}",state="waiting"}`)).toBeGreaterThanOrEqual(0);
    }
    expect(value(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(value(text, 'metrics_source_up{source="postgres"}')).toBe(1);
    expect(value(text, 'metrics_source_up{source="redis"}')).toBe(1);
    // Counters of failures have a sample before the first one, so that increase() sees it.
    expect(value(text, 'metrics_scrape_errors_total{source="postgres"}')).toBe(0);
    expect(value(text, 'metrics_scrape_errors_total{source="redis"}')).toBe(0);
    expect(value(text, 'http_idempotent_requests_total{outcome="in_progress"}')).toBe(0);
    expect(value(text, 'http_idempotent_requests_total{outcome="taken_over"}')).toBe(0);
    // Raw paths never become labels.
    expect(text).not.toContain('xxxxxxxx');

    // The outbox backlog is read on every scrape; the counts over the retained history at most once a minute.
    await api.http.post(`/v1/webhooks/${created.body.id}/rotate-secret`, { key });
    clock.advance(2100);
    const again = (await api.http.get('/metrics')).text;
    expect(value(again, 'audit_outbox_pending')).toBe(value(text, 'audit_outbox_pending')! + 1);
    expect(value(again, 'webhook_secret_rotations{trigger="manual"}')).toBe(
      value(text, 'webhook_secret_rotations{trigger="manual"}'),
    );
  });

  it('counts the delivery log by status and the rotations by trigger, as the database holds them', async () => {
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/counted', subscribed_events: ['task.completed'] },
    });
    // Counts over the retained history are taken at most once a minute, and shared by the replicas through Redis.
    const counts = async () => {
      clock.advance(61_000);
      await forgetSharedHistoryCounts();
      const text = (await api.http.get('/metrics')).text;
      return Object.fromEntries(
        ['pending', 'succeeded', 'failed', 'dead']
          .map((status) => [status, value(text, `webhook_deliveries{status="${status}"}`)])
          .concat([['manual', value(text, 'webhook_secret_rotations{trigger="manual"}')]]),
      );
    };
    const before = await counts();
    const db = new Client({ connectionString: TEST_DATABASE_URL });
    await db.connect();
    try {
      const added = { pending: 1, succeeded: 2, failed: 1, dead: 3 };
      let n = 0;
      for (const [status, count] of Object.entries(added))
        for (let i = 0; i < count; i++)
          await db.query(
            `INSERT INTO deliveries (id, webhook_id, project_id, external_event_id, event_type, payload, status,
               scheduled_at, created_at)
             VALUES (gen_random_uuid(), $1, $2, $3, 'task.completed', '{}', $4, now(), now())`,
            [created.body.id, created.body.project_id, `evt_counted_${n++}`, status],
          );
      await api.http.post(`/v1/webhooks/${created.body.id}/rotate-secret`, { key });
      expect(await counts()).toEqual({
        pending: before.pending! + 1,
        succeeded: before.succeeded! + 2,
        failed: before.failed! + 1,
        dead: before.dead! + 3,
        manual: before.manual! + 1,
      });
    } finally {
      await db.end();
    }
  });

  it('counts the requests with an Idempotency-Key by what became of the key', async () => {
    const { key } = await api.newKey();
    const create = (url: string) =>
      api.http.post('/v1/webhooks', {
        key,
        body: { url, subscribed_events: ['task.completed'] },
        headers: { 'idempotency-key': 'metrics-key' },
      });
    const first = await create('https://hooks.example.com/idem');
    expect(first.status).toBe(201);
    expect((await create('https://hooks.example.com/idem')).status).toBe(201);
    expect((await create('https://hooks.example.com/other')).status).toBe(409);
    // Its webhook deleted, the first response is no longer given out.
    await api.http.delete(`/v1/webhooks/${first.body.id}`, { key });
    expect((await create('https://hooks.example.com/idem')).status).toBe(404);
    const text = (await api.http.get('/metrics')).text;
    for (const [outcome, n] of [
      ['first', 1],
      ['replayed', 1],
      ['replay_refused', 1],
      ['reused', 1],
    ] as const) {
      expect(value(text, `http_idempotent_requests_total{outcome="${outcome}"}`)).toBe(n);
    }
  });

  it('counts the published entries set aside as not events, and tells when the newest was', async () => {
    const redis = new Redis(TEST_REDIS_URL);
    try {
      // What the worker's ingestor writes for an entry that is not an event.
      const id = await redis.xadd(
        'webhooks:events:rejected',
        '*',
        'entry',
        '1-1',
        'reason',
        'x',
        'fields',
        '[]',
      );
      clock.advance(2100);
      const text = (await api.http.get('/metrics')).text;
      expect(value(text, 'published_events_rejected')).toBeGreaterThanOrEqual(1);
      expect(value(text, 'published_events_last_rejected_timestamp_seconds')).toBe(
        Number(String(id).split('-')[0]) / 1000,
      );
    } finally {
      redis.disconnect();
    }
  });

  it('keeps reporting Postgres up when only a count over the history runs out of time', async () => {
    const slowClock = new ManualClock();
    const slow = await startApi({ env: { DATABASE_STATEMENT_TIMEOUT_MS: '300' }, clock: slowClock });
    try {
      // The counts the other instance shared would be used as they are: this one must count itself.
      await forgetSharedHistoryCounts();
      // Another session holds the deliveries table: the count over it waits, and Postgres cancels it.
      const holder = new Client({ connectionString: TEST_DATABASE_URL });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE');
        const text = (await slow.http.get('/metrics')).text;
        expect(text).toMatch(/^metrics_source_up\{source="postgres"\} 1$/m);
        expect(text).toMatch(/^audit_outbox_pending \d+$/m);
        expect(text).not.toMatch(/^webhook_deliveries\{/m);
        expect(text).not.toMatch(/^webhook_secret_rotations\{/m);
        expect(value(text, 'metrics_scrape_errors_total{source="postgres"}')).toBeGreaterThanOrEqual(1);
      } finally {
        await holder.query('ROLLBACK');
        await holder.end();
      }
      // Not counted again before the 10 s pause that follows a failure is over, though the table is free now.
      slowClock.advance(9_000);
      expect((await slow.http.get('/metrics')).text).not.toMatch(/^webhook_secret_rotations\{/m);
      // Counted again at the first scrape after it, once the two seconds the last scrape is kept for are over too
      // (the shared failure mark, which Redis expires after 10 s of its own clock, would be gone by then: removed
      // here, since Redis's clock does not move with this one).
      slowClock.advance(2_000);
      await forgetSharedHistoryCounts();
      expect((await slow.http.get('/metrics')).text).toMatch(/^webhook_secret_rotations\{/m);
    } finally {
      await slow.close();
    }
  });
});

/** Removes the counts over the retained history that API instances share through Redis (and their lock). */
async function forgetSharedHistoryCounts(): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    const keys = await redis.keys('metrics:{history-counts:*');
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

describe('GET /metrics while Postgres hangs', () => {
  let api: RunningApi;
  let pgProxy: TcpProxy;
  const clock = new ManualClock();

  beforeAll(async () => {
    pgProxy = await TcpProxy.inFrontOf(TEST_DATABASE_URL);
    api = await startApi({ env: { DATABASE_URL: pgProxy.rewrite(TEST_DATABASE_URL) }, clock });
  });
  afterAll(async () => {
    pgProxy.restore();
    await api.close();
    await pgProxy.stop();
  });

  it('answers a scrape within seconds while Postgres hangs, reporting it down, and recovers', async () => {
    // A scrape first, so the pool holds open connections: the backlog read goes out on one and gets no answer.
    expect((await api.http.get('/metrics')).text).toMatch(/^metrics_source_up\{source="postgres"\} 1$/m);
    clock.advance(2100); // past the scrape cache
    pgProxy.freeze();
    const warned = jest.spyOn(Logger.prototype, 'warn');
    try {
      const scrape = await api.http.get('/metrics');
      expect(scrape.status).toBe(200);
      expect(scrape.text).toMatch(/^metrics_source_up\{source="postgres"\} 0$/m);
      expect(scrape.text).not.toMatch(/^audit_relay_lag_seconds /m);
      // Given up on at the scrape's own 5 s wait for the backlog, well inside Prometheus' default scrape timeout
      // (10 s), not at the connection's answer deadline (the statement timeout plus 5 s, 20 s).
      expect(warned.mock.calls.map(([message]) => message)).toContain(
        'metrics: cannot read Postgres: no answer within 5000 ms',
      );
    } finally {
      warned.mockRestore();
      pgProxy.restore();
    }
    await eventually(async () => {
      clock.advance(2100); // each scrape past the cache of the one before
      return /^metrics_source_up\{source="postgres"\} 1$/m.test((await api.http.get('/metrics')).text);
    });
  });
});

describe('GET /metrics on several API replicas', () => {
  let a: RunningApi;
  let b: RunningApi;
  beforeAll(async () => {
    [a, b] = await Promise.all([startApi(), startApi()]);
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  const series = (text: string) =>
    text
      .split('\n')
      .filter((l) => /^(webhook_secret_rotations|webhook_deliveries)\{/.test(l))
      .sort();

  it('counts the retained history in one replica for all: the others read its counts', async () => {
    await forgetSharedHistoryCounts();
    const countedByA = jest.spyOn(a.db.repos.metrics, 'historyCounts');
    const countedByB = jest.spyOn(b.db.repos.metrics, 'historyCounts');
    try {
      const first = (await a.http.get('/metrics')).text;
      const second = (await b.http.get('/metrics')).text;
      expect(countedByA).toHaveBeenCalledTimes(1);
      expect(countedByB).not.toHaveBeenCalled();
      expect(series(first).length).toBeGreaterThanOrEqual(6);
      expect(series(second)).toEqual(series(first));
    } finally {
      countedByA.mockRestore();
      countedByB.mockRestore();
    }
  });

  it('after another replica failed to count, reports the previous counts instead of counting again at once', async () => {
    await forgetSharedHistoryCounts();
    const redis = new Redis(TEST_REDIS_URL);
    const other = await startApi();
    try {
      // A replica that counts (nothing is stored) and shares its counts.
      const writer = await startApi();
      const stored = series((await writer.http.get('/metrics')).text);
      await writer.close();
      expect(stored.length).toBeGreaterThanOrEqual(6);
      const key = sharedHistoryCountsKey(loadConfig().database.url);
      // Those counts are nine minutes old now (Redis tells their age: what is left of their ten minutes), and the
      // count another replica tried since then failed.
      await redis.pexpire(key, 60_000);
      await redis.set(`${key}:failed`, '1', 'PX', 60_000);
      const counted = jest.spyOn(other.db.repos.metrics, 'historyCounts');
      const text = (await other.http.get('/metrics')).text;
      expect(counted).not.toHaveBeenCalled();
      expect(series(text)).toEqual(stored);
      expect(text).not.toMatch(/^metrics_scrape_errors_total\{source="postgres"\} [1-9]/m);
    } finally {
      await other.close();
      await forgetSharedHistoryCounts();
      redis.disconnect();
    }
  });

  it('while another replica counts and nothing is stored yet, goes without the two series, and without an error', async () => {
    await forgetSharedHistoryCounts();
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const fresh = await startApi();
      try {
        // Another replica holds the lock, counting.
        const key = sharedHistoryCountsKey(loadConfig().database.url);
        await redis.set(`${key}:counting`, 'another replica', 'PX', 60_000);
        const counted = jest.spyOn(fresh.db.repos.metrics, 'historyCounts');
        const text = (await fresh.http.get('/metrics')).text;
        expect(counted).not.toHaveBeenCalled();
        expect(series(text)).toEqual([]);
        expect(text).toMatch(/^metrics_source_up\{source="postgres"\} 1$/m);
        expect(text).not.toMatch(/^metrics_scrape_errors_total\{source="postgres"\} [1-9]/m);
      } finally {
        await fresh.close();
      }
    } finally {
      await forgetSharedHistoryCounts();
      redis.disconnect();
    }
  });
});

describe('queue dashboard (/admin/queues)', () => {
  it('does not exist without ADMIN_TOKEN', async () => {
    const api = await startApi();
    try {
      expect((await api.http.get('/admin/queues')).status).toBe(404);
    } finally {
      await api.close();
    }
  });

  it('answers its API 503 with Retry-After, not never, while Redis has not answered since boot', async () => {
    // Nothing listens on port 1: the dashboard's queue handles never get a connection to wait for.
    const api = await startApi({ env: { ADMIN_TOKEN, REDIS_URL: 'redis://127.0.0.1:1/0' } });
    try {
      const authorization = `Bearer ${ADMIN_TOKEN}`;
      const res = await api.http.get('/admin/queues/api/queues', {
        headers: { authorization },
        signal: AbortSignal.timeout(5000),
      });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('service_unavailable');
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
      // The page itself needs no Redis.
      expect((await api.http.get('/admin/queues', { headers: { authorization } })).status).toBe(200);
    } finally {
      await api.close();
    }
  });

  it('answers its API 503 with Retry-After within seconds while Redis hangs, not for as long as it hangs', async () => {
    const redisProxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    const api = await startApi({ env: { ADMIN_TOKEN, REDIS_URL: redisProxy.rewrite(TEST_REDIS_URL) } });
    const warned = jest.spyOn(Logger.prototype, 'warn');
    try {
      const authorization = `Bearer ${ADMIN_TOKEN}`;
      // Once first, so the dashboard's connection is up: a Redis that hangs keeps it open and answers nothing.
      expect((await api.http.get('/admin/queues/api/queues', { headers: { authorization } })).status).toBe(
        200,
      );
      redisProxy.freeze();
      const res = await api.http.get('/admin/queues/api/queues', {
        headers: { authorization },
        signal: AbortSignal.timeout(15_000),
      });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('service_unavailable');
      expect(res.headers.get('retry-after')).toBe('5');
      // Given up on at the dashboard connection's command timeout (5 s), not when the hung socket is dropped.
      expect(warned.mock.calls).toContainEqual([
        { request_id: res.body.request_id, reason: 'Command timed out' },
        'dependency unavailable',
      ]);
    } finally {
      warned.mockRestore();
      redisProxy.restore();
      await api.close();
      await redisProxy.stop();
    }
  });

  describe('with ADMIN_TOKEN', () => {
    let api: RunningApi;
    beforeAll(async () => {
      api = await startApi({ env: { ADMIN_TOKEN } });
    });
    afterAll(() => api.close());

    it('refuses requests without the token', async () => {
      for (const authorization of [
        undefined,
        'Bearer wrong-token-wrong-token',
        `Basic ${btoa('admin:nope')}`,
      ]) {
        const res = await api.http.get('/admin/queues', authorization ? { headers: { authorization } } : {});
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('unauthorized');
      }
    });

    it('shows every queue to a bearer or basic-auth admin', async () => {
      const page = await api.http.get('/admin/queues', {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      const list = await api.http.get('/admin/queues/api/queues', {
        headers: { authorization: `Basic ${btoa(`ops:${ADMIN_TOKEN}`)}` },
      });
      expect(list.status).toBe(200);
      expect(list.body.queues.map((q: { name: string }) => q.name).sort()).toEqual([
        'audit',
        'delivery',
        'housekeeping',
        'rotation',
      ]);
    });

    it('may not be framed by another page (its buttons retry, clean and pause queues)', async () => {
      const page = await api.http.get('/admin/queues', {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(page.status).toBe(200);
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      expect(page.headers.get('content-security-policy')).toBe("frame-ancestors 'none'");
    });

    it('refuses a POST that a page of another site could make a logged-in browser send', async () => {
      // A form (text/plain, urlencoded, multipart) or a fetch without a content type needs no CORS preflight,
      // and a browser sends the basic-auth credentials it holds for the dashboard along with it.
      const authorization = `Basic ${btoa(`ops:${ADMIN_TOKEN}`)}`;
      const job = '{"name":"housekeeping.forged","data":{},"options":{"delay":86400000,"x":"="}}';
      for (const contentType of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        undefined,
      ]) {
        const res = await api.http.post('/admin/queues/api/queues/housekeeping/add', {
          // Bytes, not a string, so that fetch adds no content type of its own where there is none.
          raw: Buffer.from(job),
          headers: { authorization, ...(contentType && { 'content-type': contentType }) },
        });
        expect({ contentType, status: res.status }).toEqual({ contentType, status: 400 });
        expect(res.body.code).toBe('validation_failed');
      }
      const list = await api.http.get('/admin/queues/api/queues?activeQueue=housekeeping&status=delayed', {
        headers: { authorization },
      });
      const housekeeping = list.body.queues.find((q: { name: string }) => q.name === 'housekeeping');
      expect(housekeeping.jobs.map((j: { name: string }) => j.name)).not.toContain('housekeeping.forged');
      // The dashboard itself posts JSON, which a page of another site cannot send without a preflight.
      const own = await api.http.post('/admin/queues/api/queues/no-such-queue/add', {
        body: { name: 'x', data: {} },
        headers: { authorization },
      });
      expect(own.status).toBe(404);
    });

    it("answers Bull Board's own refusals with the one error body", async () => {
      const authorization = `Bearer ${ADMIN_TOKEN}`;
      for (const [method, path, body, status, code] of [
        ['PUT', '/admin/queues/api/queues/no-such-queue/retry/failed', undefined, 404, 'not_found'],
        ['GET', '/admin/queues/api/queues/housekeeping/no-such-job', undefined, 404, 'not_found'],
        [
          'PUT',
          '/admin/queues/api/queues/housekeeping/concurrency',
          { concurrency: -1 },
          400,
          'validation_failed',
        ],
      ] as const) {
        const res = await api.http.request(method, path, { body, headers: { authorization } });
        expect({ path, status: res.status, code: res.body.code }).toEqual({ path, status, code });
        expect(typeof res.body.error).toBe('string');
        expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
      }
    });

    it('answers a body that is not JSON, or too large, with the one error body, not a 500', async () => {
      const authorization = `Bearer ${ADMIN_TOKEN}`;
      const retry = '/admin/queues/api/queues/housekeeping/retry/failed';
      const add = '/admin/queues/api/queues/housekeeping/add';
      for (const [method, path, raw, status, code] of [
        ['PUT', retry, '{x', 400, 'invalid_json'],
        ['POST', add, '{x', 400, 'invalid_json'],
        ['PUT', retry, `"${'x'.repeat(70 * 1024)}"`, 413, 'payload_too_large'],
      ] as const) {
        const res = await api.http.request(method, path, {
          raw: Buffer.from(raw),
          headers: { authorization, 'content-type': 'application/json' },
        });
        expect({ method, status: res.status, code: res.body.code }).toEqual({ method, status, code });
        expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
      }
    });
  });
});
