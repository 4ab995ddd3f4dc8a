import { Writable } from 'node:stream';
import type { Job } from 'bullmq';
import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import { ManualClock } from '@app/domain';
import { JobName } from '@app/queue';
import { DELIVERY_TLS, DNS_RESOLVER } from '../apps/worker/src/delivery/delivery-sender.provider';
import { RotationProcessor } from '../apps/worker/src/rotation/rotation.processor';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { HttpsReceiver } from './support/https-receiver';
import { rawExchange } from './support/raw-http';
import { startWorker, type RunningWorker } from './support/worker-harness';

/** Collects every JSON log line written by the API or the worker. */
class CapturedLogs extends Writable {
  readonly chunks: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk.toString('utf8'));
    done();
  }
  get text(): string {
    return this.chunks.join('');
  }
  get lines(): Record<string, any>[] {
    return this.text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l));
  }
}

describe('structured logs', () => {
  let api: RunningApi;
  const logs = new CapturedLogs();

  beforeAll(async () => {
    // A short request timeout for the request that stalls below (the server's own timer).
    api = await startApi({
      env: { LOG_LEVEL: 'trace', HTTP_REQUEST_TIMEOUT_MS: '1000' },
      logDestination: logs,
    });
  });
  afterAll(() => api.close());

  it('log a full create and rotate run without any secret or API key', async () => {
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      headers: {
        'idempotency-key': 'log-test-1',
        authorization: 'Bearer top-secret-token',
        cookie: 'sid=abc123',
      },
      body: { url: 'https://hooks.example.com/in', subscribed_events: ['task.completed'] },
    });
    expect(created.status).toBe(201);
    const replayed = await api.http.post('/v1/webhooks', {
      key,
      headers: { 'idempotency-key': 'log-test-1' },
      body: { url: 'https://hooks.example.com/in', subscribed_events: ['task.completed'] },
    });
    expect(replayed.body.secret).toBe(created.body.secret);
    const id: string = created.body.id;
    const rotated = await api.http.post(`/v1/webhooks/${id}/rotate-secret`, {
      key,
      headers: { 'anchor-signature': 't=1,v1=deadbeef' },
    });
    expect(rotated.status).toBe(200);
    expect((await api.http.get(`/v1/webhooks/${id}`, { key })).status).toBe(200);
    const wrongKey = `${key}x`;
    expect((await api.http.get('/v1/webhooks', { key: wrongKey })).status).toBe(401);
    // A key or a secret put in the URL by mistake is not logged either.
    expect((await api.http.get(`/v1/webhooks?api_key=${key}`, { key })).status).toBe(200);
    expect((await api.http.get(`/v1/webhooks/${rotated.body.secret}`, { key })).status).toBe(404);
    // Claim (nothing to claim: 409) and test delivery (queued only: no worker here); the run with a scheduled
    // rotation, its claim and a delivered test event, API and worker, is the last describe of this file.
    await api.http.post(`/v1/webhooks/${id}/secret/claim`, { key });
    await api.http.post(`/v1/webhooks/${id}/test`, { key, body: { event_type: 'task.completed' } });

    // pino writes asynchronously through the stream; wait for the last request's line.
    await eventually(() => logs.text.includes(`/v1/webhooks/${id}/test`), 5000, "the test event's log line");

    const text = logs.text;
    for (const forbidden of [
      key,
      wrongKey,
      created.body.secret,
      rotated.body.secret,
      'top-secret-token',
      'abc123',
      'deadbeef',
    ]) {
      expect(text).not.toContain(forbidden);
    }
    expect(text).toContain('[redacted]');

    const requestLines = logs.lines.filter((l) => l.req && l.res);
    const rotateLine = requestLines.find((l) => l.req.url === `/v1/webhooks/${id}/rotate-secret`);
    expect(rotateLine).toMatchObject({
      route: '/v1/webhooks/:id/rotate-secret',
      res: { statusCode: 200 },
      req: { id: rotated.headers.get('x-request-id'), method: 'POST' },
    });
    expect(typeof rotateLine!.responseTime).toBe('number');
    expect(rotateLine!.req.headers['anchor-api-key']).toBe('[redacted]');
    // Nest's own messages go through pino too.
    expect(logs.lines.some((l) => typeof l.context === 'string' && l.context.length > 0)).toBe(true);
  });

  it('a key or a secret sent as x-request-id is not taken as the request id: not in the log, the answer or the audit trail', async () => {
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      headers: { 'x-request-id': key },
      body: { url: 'https://hooks.example.com/rid', subscribed_events: ['task.completed'] },
    });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    const rotated = await api.http.post(`/v1/webhooks/${id}/rotate-secret`, {
      key,
      headers: { 'x-request-id': created.body.secret },
    });
    expect(rotated.status).toBe(200);
    const requestIds = [created.headers.get('x-request-id'), rotated.headers.get('x-request-id')];
    for (const requestId of requestIds) expect(requestId).toMatch(/^[0-9a-f-]{36}$/);

    await eventually(() => logs.text.includes(requestIds[1]!), 5000, "the rotation's log line");
    expect(logs.text).toContain(requestIds[1]);
    expect(logs.text).not.toContain(key);
    expect(logs.text).not.toContain(created.body.secret);

    const audit = await api.http.get(`/v1/audit-events?webhook_id=${id}`, { key });
    expect(audit.status).toBe(200);
    const auditIds = (audit.body.events as { request_id: string | null }[]).map((e) => e.request_id).sort();
    expect(auditIds).toEqual([...requestIds].sort());
  });

  it('an unexpected failure is a bare 500 internal_error, logged at error with the request id and the cause', async () => {
    const { key } = await api.newKey();
    // A failure no code path expects: Postgres refuses the insert with an error that carries SQL.
    await api.db.dataSource.query(`
      CREATE OR REPLACE FUNCTION refuse_exploding_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'INSERT INTO webhooks failed at the third row'; END $$;
      CREATE TRIGGER refuse_exploding_webhook BEFORE INSERT ON webhooks FOR EACH ROW
        WHEN (NEW.description = 'explode') EXECUTE FUNCTION refuse_exploding_webhook();`);
    let res;
    try {
      res = await api.http.post('/v1/webhooks', {
        key,
        headers: { 'x-request-id': 'boom-500' },
        body: {
          url: 'https://hooks.example.com/in?token=tok-boom-500',
          subscribed_events: ['task.completed'],
          description: 'explode',
        },
      });
    } finally {
      await api.db.dataSource.query(`
        DROP TRIGGER IF EXISTS refuse_exploding_webhook ON webhooks;
        DROP FUNCTION IF EXISTS refuse_exploding_webhook();`);
    }
    expect(res.status).toBe(500);
    expect(res.headers.get('x-request-id')).toBe('boom-500');
    // Exactly the documented fields: no details, no message of the cause, no stack.
    expect(res.body).toEqual({
      error: 'internal error; the request id identifies it in the logs',
      code: 'internal_error',
      request_id: 'boom-500',
    });

    const deadline = Date.now() + 5000;
    while (!logs.lines.some((l) => l.msg === 'unhandled error' && l.request_id === 'boom-500')) {
      if (Date.now() > deadline) throw new Error('no error line for the 500');
      await new Promise((r) => setTimeout(r, 20));
    }
    const line = logs.lines.find((l) => l.msg === 'unhandled error' && l.request_id === 'boom-500')!;
    expect(line).toMatchObject({ level: 50, route: '/v1/webhooks' });
    expect(JSON.stringify(line.err)).toContain('INSERT INTO webhooks failed');
    expect(logs.text).not.toContain(key);
    // The values the failed query was sent with (the new secret's ciphertext among them) are blanked.
    expect(line.err.parameters).toBe('[redacted]');
    expect(logs.text).not.toContain('tok-boom-500');
  });

  it('a client that hangs up in the middle of its body is no dependency outage: one line at info, nothing at warn or above, no 503', async () => {
    const { key } = await api.newKey();
    for (const [id, head] of [
      ['abort-create', 'POST /v1/webhooks'],
      ['abort-keyed', 'POST /v1/webhooks/wh_01ARZ3NDEKTSV4RRFFQ69G5FAV/rotate-secret'],
    ]) {
      await rawExchange(
        api.http.baseUrl,
        [
          `${head} HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\nx-request-id: ${id}\r\n` +
            `idempotency-key: ${id}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"url":`,
          100,
        ],
        { hangUp: true },
      );
    }
    // pino writes asynchronously: wait for a line about each.
    await eventually(
      () => logs.text.includes('abort-create') && logs.text.includes('abort-keyed'),
      5000,
      'a line about each aborted request',
    );
    const aborted = logs.lines.filter((l) => /abort-(create|keyed)/.test(JSON.stringify(l)));
    expect(aborted.filter((l) => l.level >= 40)).toEqual([]);
    expect(logs.lines.filter((l) => l.msg === 'dependency unavailable')).toEqual([]);
    // One line each, at info, saying what happened.
    expect(aborted.map((l) => [l.request_id, l.level, l.msg])).toEqual([
      ['abort-create', 30, 'connection closed before the request was received'],
      ['abort-keyed', 30, 'connection closed before the request was received'],
    ]);
    expect((await api.http.get('/metrics')).text).not.toMatch(/^http_requests_total\{.*status="503"/m);
  });

  it('a path that is not valid percent-encoding gets its line at warn and counts in http_requests_total', async () => {
    const { key } = await api.newKey();
    const count = async (series: string) =>
      Number(
        new RegExp(`^http_requests_total\\{${series}\\} (\\d+)$`, 'm').exec(
          (await api.http.get('/metrics')).text,
        )?.[1] ?? 0,
      );
    const series = 'method="GET",route="unmatched",status="400"';
    const before = await count(series);
    const res = await rawExchange(api.http.baseUrl, [
      `GET /v1/webhooks/%ZZ HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\nx-request-id: bad-path-log\r\nConnection: close\r\n\r\n`,
    ]);
    expect(res.responses[0]?.status).toBe(400);
    const lines = () => logs.lines.filter((l) => l.req?.id === 'bad-path-log');
    await eventually(() => lines().length > 0, 2000, 'the log line').catch(() => undefined);
    expect(lines().map((l) => [l.level, l.msg, l.route, l.req.method, l.req.url, l.res?.statusCode])).toEqual(
      [[40, 'request completed', 'unmatched', 'GET', '/v1/webhooks/%ZZ', 400]],
    );
    expect(await count(series)).toBe(before + 1);
  });

  it('answers the HTTP server gives before routing get one line each at warn and count in http_requests_total', async () => {
    const { key } = await api.newKey();
    // Every request series but the scrapes' own.
    const requestCounts = async () => {
      const counts: Record<string, number> = {};
      for (const m of (await api.http.get('/metrics')).text.matchAll(
        /^http_requests_total\{method="([^"]*)",route="([^"]*)",status="(\d+)"\} (\d+)$/gm,
      ))
        if (m[2] !== '/metrics') counts[`${m[1]} ${m[2]} ${m[3]}`] = Number(m[4]);
      return counts;
    };
    const before = await requestCounts();
    const exchanges: [string, string[]][] = [
      ['not HTTP', ['BLAH\r\n\r\n']],
      [
        'unmet Expect (the key in the query too, by mistake)',
        [
          `GET /v1/webhooks?api_key=${key} HTTP/1.1\r\nHost: x\r\nexpect: later\r\nx-request-id: conn-417\r\n\r\n`,
        ],
      ],
      ['CONNECT', ['CONNECT hooks.example.com:443 HTTP/1.1\r\nHost: x\r\nx-request-id: conn-404\r\n\r\n']],
      [
        'a body that stops half way',
        [
          `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\n` +
            'x-request-id: conn-408\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{',
        ],
      ],
      [
        'headers over 16 KiB',
        [`GET /v1/webhooks HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(17 * 1024)}\r\n\r\n`],
      ],
    ];
    const statuses: number[] = [];
    for (const [, steps] of exchanges) {
      const res = await rawExchange(api.http.baseUrl, steps);
      statuses.push(res.responses[0]?.status);
    }
    expect(statuses).toEqual([400, 417, 404, 408, 431]);

    const answered = () => logs.lines.filter((l) => l.msg === 'request answered by the HTTP server');
    await eventually(() => answered().length >= exchanges.length, 5000, "the HTTP server's answer lines");
    expect(answered().map((l) => [l.level, l.route, l.status, l.code, l.req.method, l.req.url])).toEqual([
      [40, '(connection)', 400, 'validation_failed', undefined, undefined],
      [40, '(connection)', 417, 'expectation_failed', 'GET', '/v1/webhooks?api_key=[redacted]'],
      [40, '(connection)', 404, 'not_found', 'CONNECT', 'hooks.example.com:443'],
      [40, '(connection)', 408, 'request_timeout', 'POST', '/v1/webhooks'],
      [40, '(connection)', 431, 'request_headers_too_large', undefined, undefined],
    ]);
    expect(
      answered()
        .map((l) => l.req.id)
        .slice(1, 4),
    ).toEqual(['conn-417', 'conn-404', 'conn-408']);
    // The stalled request, whose head Fastify had read, is not logged again as a request: beside this line, only
    // the info line of its cut-off body.
    expect(
      logs.lines
        .filter((l) => l.req?.id === 'conn-408' || l.request_id === 'conn-408')
        .map((l) => [l.level, l.msg]),
    ).toEqual([
      [40, 'request answered by the HTTP server'],
      [30, 'connection closed before the request was received'],
    ]);
    expect(logs.text).not.toContain(key);

    const after = await requestCounts();
    const delta = Object.fromEntries(
      Object.entries(after)
        .map(([k, n]) => [k, n - (before[k] ?? 0)])
        .filter(([, n]) => n !== 0),
    );
    // Counted once each, the stalled request included, and nothing else.
    expect(delta).toEqual({
      'unknown (connection) 400': 1,
      'GET (connection) 417': 1,
      'CONNECT (connection) 404': 1,
      'POST (connection) 408': 1,
      'unknown (connection) 431': 1,
    });
  }, 30_000);
});

describe('structured logs of the API and the worker over a secret’s whole life', () => {
  const NAME = 'hooks.logging-e2e.com';
  const DAY = 24 * 3600 * 1000;
  const clock = new ManualClock(new Date('2026-06-01T00:00:00.000Z'));
  // One destination for both: in one process nestjs-pino's loggers all write through the first one it made.
  const logs = new CapturedLogs();
  const receiver = new HttpsReceiver(NAME);
  let api: RunningApi;
  let worker: RunningWorker;

  beforeAll(async () => {
    await receiver.listen();
    // Forget the first describe's: the first logger made from here on writes to `logs`.
    __resetOutOfContextForTests();
    api = await startApi({ clock, env: { LOG_LEVEL: 'trace' }, logDestination: logs });
    worker = await startWorker({
      clock,
      // The recurring sweep stays out of the way: the test runs the sweep job itself, at the clock's time.
      env: { LOG_LEVEL: 'trace', TARGET_ALLOW_CIDRS: '127.0.0.1/32', ROTATION_SWEEP_EVERY_MS: '86400000' },
      logDestination: logs,
      overrides: [
        { token: DNS_RESOLVER, value: async () => [{ address: '127.0.0.1', family: 4 }] },
        { token: DELIVERY_TLS, value: { ca: receiver.cert } },
      ],
    });
  });
  afterAll(async () => {
    await worker.close();
    await api.close();
    await receiver.close();
  });

  it('create, rotate, a scheduled rotation, its claim and a delivered test event: no secret, key or signature in any line', async () => {
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: receiver.url('/logged'), subscribed_events: ['task.completed'] },
    });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    const rotated = await api.http.post(`/v1/webhooks/${id}/rotate-secret`, { key });
    expect(rotated.status).toBe(200);
    const policy = await api.http.put(`/v1/webhooks/${id}/rotation-policy`, {
      key,
      body: { interval_days: 1, grace_period_hours: 2 },
    });
    expect(policy.status).toBe(200);
    // Past the day: the changes above were dated a millisecond apart, after one another, at the clock's time.
    clock.advance(DAY + 60_000);
    // The sweep as its recurring job runs it (the job logs what it rotated).
    await worker.get(RotationProcessor).process({ name: JobName.RotationSweep } as Job);
    const claimed = await api.http.post(`/v1/webhooks/${id}/secret/claim`, { key });
    expect(claimed.status).toBe(200);
    const test = await api.http.post(`/v1/webhooks/${id}/test`, {
      key,
      body: { event_type: 'task.completed' },
    });
    expect(test.status).toBe(202);
    await eventually(
      async () =>
        (await api.http.get(`/v1/webhooks/${id}/events`, { key })).body.events[0]?.status === 'succeeded',
      15_000,
      'the test event delivered',
    );
    const [delivered] = receiver.at('/logged');
    const signature = String(delivered.headers['anchor-signature']);
    // Signed with the claimed secret and the one it replaced (2 h of grace); the first one's 24 h are over.
    expect(signature.match(/v1=[0-9a-f]{64}/g)).toHaveLength(2);

    const secrets = [created.body.secret, rotated.body.secret, claimed.body.secret];
    expect(new Set(secrets).size).toBe(3);
    for (const secret of secrets) expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const signatures = signature.match(/[0-9a-f]{64}/g)!;
    // Both processes logged this run: the API a line per request, the worker the sweep's rotation.
    expect(
      logs.lines.filter((l) => l.req?.url?.startsWith(`/v1/webhooks/${id}`)).length,
    ).toBeGreaterThanOrEqual(5);
    expect(logs.lines.some((l) => l.msg === 'rotation sweep' && l.rotated === 1)).toBe(true);
    const text = logs.text;
    for (const forbidden of [key, ...secrets, ...signatures]) expect(text).not.toContain(forbidden);
    expect(text).not.toMatch(/(^|[^0-9a-f])[0-9a-f]{64}([^0-9a-f]|$)/);
  });
});
