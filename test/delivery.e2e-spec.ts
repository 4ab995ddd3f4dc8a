import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { Logger } from '@nestjs/common';
import { DeliveriesService, ManualClock, eventIdForPublisherId, eventIdFromStreamEntry } from '@app/domain';
import { loadConfig } from '@app/config';
import {
  DeliveryQueue,
  QUEUE_PREFIX,
  QueueName,
  deliveryAttemptJobId,
  redisOptionsFromUrl,
} from '@app/queue';
import { parseSignatureHeader, verifyWebhookSignature } from '@app/signing';
import { isPublicAddress, parseCidrList } from '@app/validation';
import { DELIVERY_TLS, DNS_RESOLVER } from '../apps/worker/src/delivery/delivery-sender.provider';
import {
  DEFAULT_EVENTS_INGEST_OPTIONS,
  EVENTS_INGEST_OPTIONS,
  EventsIngestor,
} from '../apps/worker/src/delivery/events.ingestor';
import { SsrfSafeSender, type HostResolver } from '../apps/worker/src/delivery/ssrf-safe.sender';
import {
  DELIVERY_CONCURRENCY,
  DELIVERY_SHARE_PER_PROJECT,
  REQUEST_TIMER,
  SLOW_REQUEST_MS,
} from '../apps/worker/src/delivery/delivery.processor';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { HttpsReceiver } from './support/https-receiver';
import { TcpProxy } from './support/tcp-proxy';
import { closedPort } from './support/closed-port';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './support/test-env';
import { startWorker, type RunningWorker } from './support/worker-harness';

const NAME = 'hooks.receiver-e2e.com';
const RESOLVES: Record<string, string[]> = {
  [NAME]: ['127.0.0.1'],
  'loopback.receiver-e2e.com': ['127.0.0.1'],
  'metadata.receiver-e2e.com': ['169.254.169.254'],
  'mixed.receiver-e2e.com': ['93.184.216.34', '10.0.0.7'],
};
const resolver: HostResolver = async (hostname) => {
  const addresses = RESOLVES[hostname];
  if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return addresses.map((address) => ({ address, family: 4 }));
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const EVT = /^evt_[0-9A-HJKMNP-TV-Z]{26}$/;
const STREAM = 'webhooks:events';

let api: RunningApi;
let clock: ManualClock;
let receiver: HttpsReceiver;
let key: string;
let projectId: string;
let redis: Redis;
let paths = 0;
/** The workers' clock for timing requests to receivers: it stands still unless a test moves it. */
let requestTimer = 0;

/** A fresh receiver path, so every test reads only its own deliveries. */
const newPath = () => `/hook/${++paths}`;

const createWebhook = async (url: string, events = ['task.completed'], k = key) => {
  const res = await api.http.post('/v1/webhooks', { key: k, body: { url, subscribed_events: events } });
  expect(res.status).toBe(201);
  return res.body as { id: string; secret: string };
};
const sendTest = (id: string, eventType = 'task.completed', k = key) =>
  api.http.post(`/v1/webhooks/${id}/test`, { key: k, body: { event_type: eventType } });
const log = async (id: string, query = '', k = key) =>
  api.http.get(`/v1/webhooks/${id}/events${query}`, { key: k });
const finalEntry = (id: string, k = key) =>
  eventually(
    async () => {
      const res = await log(id, '', k);
      const [row] = res.body.events;
      return row && row.status !== 'pending' ? row : undefined;
    },
    15_000,
    'a final delivery state',
  );

/**
 * Resolves once nothing more can be sent for these webhooks: none of their deliveries pending, and no attempt job
 * of theirs left in the queue (waiting, delayed or running). A job leaves the queue only once its request has been
 * answered, so whatever a duplicate would have sent has reached the receiver by then, and a count taken afterwards
 * is final. Events still in the stream are not covered: wait for their entries to be acknowledged first.
 */
const settled = (webhookIds: string[]) =>
  eventually(
    async () => {
      const rows: { id: string; attempt: number; status: string }[] = await api.db.dataSource.query(
        'SELECT id, attempt, status FROM deliveries WHERE webhook_id = ANY($1)',
        [webhookIds],
      );
      if (rows.some((r) => r.status === 'pending')) return false;
      const queued = await api.app.get(DeliveryQueue).areQueued(
        rows.flatMap((r) => [
          { deliveryId: r.id, attempt: r.attempt },
          { deliveryId: r.id, attempt: r.attempt + 1 },
        ]),
      );
      return !queued.includes(true);
    },
    15_000,
    'the deliveries to be over',
  );

/**
 * A receiver that accepts connections and never answers, not even the TLS handshake: each attempt to it holds its
 * slot until the attempt times out. With `passTo`, it first passes connections on to that port (a receiver that
 * answers), until `hang()`: then it drops them, and holds every later one.
 */
async function blackHole(passTo?: number): Promise<{
  port: number;
  hung: Set<Socket>;
  most: () => number;
  /** Held connections that closed: the worker gave up on an attempt (it timed out). */
  closed: () => number;
  hang: () => void;
  close: () => void;
}> {
  const hung = new Set<Socket>();
  const passed = new Set<Socket>();
  let hanging = passTo === undefined;
  let most = 0;
  let closed = 0;
  const server = createServer((s) => {
    s.on('error', () => undefined);
    if (!hanging) {
      const upstream = connect(passTo!, '127.0.0.1');
      upstream.on('error', () => undefined);
      s.pipe(upstream).pipe(s);
      for (const end of [s, upstream]) {
        passed.add(end);
        end.on('close', () => {
          passed.delete(end);
          s.destroy();
          upstream.destroy();
        });
      }
      return;
    }
    hung.add(s);
    // Reads (and drops) what arrives, so that a connection the worker closes is seen closing.
    s.resume();
    most = Math.max(most, hung.size);
    s.on('close', () => {
      hung.delete(s);
      closed++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hung,
    most: () => most,
    closed: () => closed,
    hang: () => {
      hanging = true;
      for (const s of passed) s.destroy();
    },
    close: () => {
      server.close();
      for (const s of [...hung, ...passed]) s.destroy();
    },
  };
}

/**
 * Another project's test event, to a receiver that answers (on the same host as the tests' other receivers), is
 * delivered (while a project's attempts hang); resolves to its webhook.
 */
const otherProjectDelivered = async () => {
  const other = await api.newKey();
  const path = newPath();
  const fine = await createWebhook(receiver.url(path), ['task.completed'], other.key);
  expect((await sendTest(fine.id, 'task.completed', other.key)).status).toBe(202);
  await eventually(() => receiver.at(path).length === 1, 15_000, "the other project's delivery");
  return { id: fine.id, key: other.key };
};

/** The ingestor's private `handle` (the entries of one read), for the tests that watch or wrap it. */
const ingestorPrototype = EventsIngestor.prototype as unknown as {
  handle: (r: Redis, e: [string, Buffer[] | null][]) => Promise<void>;
};

function workerWith(
  env: Record<string, string>,
  overrides: { token: unknown; value: unknown }[] = [],
): Promise<RunningWorker> {
  return startWorker({
    clock,
    env: { DELIVERY_RETRY_SCHEDULE: '0,0,0', ...env },
    overrides: [
      { token: DNS_RESOLVER, value: resolver },
      { token: REQUEST_TIMER, value: () => requestTimer },
      { token: DELIVERY_TLS, value: { ca: receiver.cert } },
      {
        token: EVENTS_INGEST_OPTIONS,
        value: {
          ...DEFAULT_EVENTS_INGEST_OPTIONS,
          blockMs: 200,
          claimMinIdleMs: 500,
          claimEveryMs: 500,
          // The trim test trims itself; one at every worker start is enough for the rest.
          trimEveryMs: 3_600_000,
        },
      },
      ...overrides,
    ],
  });
}

beforeAll(async () => {
  clock = new ManualClock(Date.parse('2026-11-22T09:00:00.000Z'));
  api = await startApi({ clock });
  receiver = new HttpsReceiver(NAME);
  await receiver.listen();
  redis = new Redis(TEST_REDIS_URL);
});
afterAll(async () => {
  await api.close();
  await receiver.close();
  redis.disconnect();
});
beforeEach(async () => {
  ({ key, projectId } = await api.newKey());
});

describe('POST /v1/webhooks/{id}/test (validation)', () => {
  it('answers 400 for an unknown or missing event type, listing the allowed values, and for unknown fields', async () => {
    const { id } = await createWebhook('https://hooks.example.com/x');
    const unknown = await sendTest(id, 'task.exploded');
    expect(unknown.status).toBe(400);
    expect(unknown.body.code).toBe('validation_failed');
    expect(unknown.body.details[0]).toMatchObject({ field: 'event_type', rule: 'event_catalog' });
    expect(unknown.body.details[0].message).toContain('task.completed');
    expect((await api.http.post(`/v1/webhooks/${id}/test`, { key, body: {} })).status).toBe(400);
    const extra = await api.http.post(`/v1/webhooks/${id}/test`, {
      key,
      body: { event_type: 'task.completed', data: {} },
    });
    expect(extra.status).toBe(400);
    expect(extra.body.details).toEqual([expect.objectContaining({ field: 'data', rule: 'unknown_field' })]);
  });

  it('answers 404 for a missing, deleted or foreign webhook and 409 for a disabled one', async () => {
    expect((await sendTest('wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P')).status).toBe(404);
    const { id } = await createWebhook('https://hooks.example.com/x');
    const other = await api.newKey();
    expect((await sendTest(id, 'task.completed', other.key)).status).toBe(404);
    expect((await log(id, '', other.key)).status).toBe(404);
    await api.http.patch(`/v1/webhooks/${id}`, { key, body: { enabled: false } });
    const disabled = await sendTest(id);
    expect(disabled.status).toBe(409);
    expect(disabled.body.code).toBe('webhook_disabled');
    await api.http.delete(`/v1/webhooks/${id}`, { key });
    expect((await sendTest(id)).status).toBe(404);
    expect((await log(id)).status).toBe(404);
    expect(
      (await api.http.post(`/v1/webhooks/${id}/test`, { body: { event_type: 'task.completed' } })).status,
    ).toBe(401);
  });
});

describe('the delivery queue handle of the API', () => {
  it('keeps one error listener however many test events it queues', async () => {
    const { id } = await createWebhook('https://hooks.example.com/listeners');
    for (let i = 0; i < 15; i++) expect((await sendTest(id)).status).toBe(202);
    const handle: unknown = api.app.get(DeliveryQueue);
    const queue = (handle as { queue: { listenerCount(event: string): number } }).queue;
    expect(queue.listenerCount('error')).toBe(1);
  });
});

describe('GET /v1/webhooks/{id}/events', () => {
  let webhookId: string;
  const base = Date.parse('2026-11-20T00:00:00.000Z');
  const at = (minutes: number) => new Date(base + minutes * 60_000);

  beforeEach(async () => {
    ({ id: webhookId } = await createWebhook('https://hooks.example.com/log'));
    // 30 rows: statuses and types rotate; row i is created and scheduled i minutes after base.
    const statuses = ['pending', 'succeeded', 'failed', 'dead', 'succeeded'];
    for (let i = 0; i < 30; i++) {
      const type = i % 3 === 0 ? 'task.failed' : 'task.completed';
      await api.db.dataSource.query(
        `INSERT INTO deliveries (id, webhook_id, project_id, external_event_id, event_type, payload, status, attempt,
           response_status, error_message, scheduled_at, completed_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          randomUUID(),
          webhookId,
          projectId,
          `evt_01JD4W1B6T0Q8H3X2Z5N7M9K${String(i).padStart(2, '0')}`.replace(/[ILOU]/g, 'A'),
          type,
          JSON.stringify({ id: `evt_${i}`, type, n: i }),
          statuses[i % 5],
          i % 5 === 0 ? 0 : 1,
          i % 5 === 1 || i % 5 === 4 ? 200 : null,
          i % 5 === 2 ? 'receiver answered HTTP 400' : null,
          at(i),
          i % 5 === 0 ? null : at(i),
          at(i),
        ],
      );
    }
  });

  it('lists newest first with the documented fields and default page size', async () => {
    const res = await log(webhookId);
    expect(res.status).toBe(200);
    expect(res.body.events).toHaveLength(25);
    expect(res.body.pagination).toEqual({ limit: 25, offset: 0, total: 30 });
    expect(Object.keys(res.body.events[0]).sort()).toEqual(
      [
        'attempt',
        'completed_at',
        'error_message',
        'event_type',
        'external_event_id',
        'id',
        'response_status',
        'scheduled_at',
        'status',
      ].sort(),
    );
    expect(res.body.events[0].scheduled_at).toBe(at(29).toISOString());
    expect(res.body.events[24].scheduled_at).toBe(at(5).toISOString());
    expect(res.body.events[0].payload).toBeUndefined();
  });

  it('pages with limit and offset; limit reports the rows returned', async () => {
    const res = await log(webhookId, '?limit=10&offset=25');
    expect(res.body.pagination).toEqual({ limit: 5, offset: 25, total: 30 });
    expect(res.body.events.map((e: any) => e.scheduled_at)).toEqual(
      [4, 3, 2, 1, 0].map((m) => at(m).toISOString()),
    );
    const beyond = await log(webhookId, '?offset=100');
    expect(beyond.body).toEqual({ events: [], pagination: { limit: 0, offset: 100, total: 30 } });
    const leadingZeros = await log(webhookId, '?limit=010&offset=025');
    expect(leadingZeros.body.pagination).toEqual({ limit: 5, offset: 25, total: 30 });
    const far = await log(webhookId, '?offset=1000000000');
    expect(far.body).toEqual({ events: [], pagination: { limit: 0, offset: 1000000000, total: 30 } });
    const past = await log(webhookId, `?offset=${'9'.repeat(40)}`);
    expect(past.body).toEqual({
      events: [],
      pagination: { limit: 0, offset: Number.MAX_SAFE_INTEGER, total: 30 },
    });
  });

  it('pages within a filter: rows in order and the exact total, whether the page is full, short or past the end', async () => {
    // succeeded: rows i with i % 5 in {1, 4}, 12 of them; newest first.
    const succeeded = [29, 26, 24, 21, 19, 16, 14, 11, 9, 6, 4, 1];
    const page = async (q: string) => {
      const res = await log(webhookId, `?status=succeeded&${q}`);
      return { at: res.body.events.map((e: any) => e.scheduled_at), pagination: res.body.pagination };
    };
    const minutes = (ms: number[]) => ms.map((m) => at(m).toISOString());
    expect(await page('limit=4&offset=4')).toEqual({
      at: minutes(succeeded.slice(4, 8)),
      pagination: { limit: 4, offset: 4, total: 12 },
    });
    expect(await page('limit=4&offset=8')).toEqual({
      at: minutes(succeeded.slice(8, 12)),
      pagination: { limit: 4, offset: 8, total: 12 },
    });
    expect(await page('limit=5&offset=10')).toEqual({
      at: minutes(succeeded.slice(10)),
      pagination: { limit: 2, offset: 10, total: 12 },
    });
    expect(await page('limit=5&offset=12')).toEqual({
      at: [],
      pagination: { limit: 0, offset: 12, total: 12 },
    });
    expect(await page('limit=100')).toEqual({
      at: minutes(succeeded),
      pagination: { limit: 12, offset: 0, total: 12 },
    });
  });

  it('filters by status, event type and an inclusive scheduled-time window', async () => {
    const rows = (res: { body: any }) =>
      res.body.events.map((e: any) => [e.scheduled_at, e.status, e.event_type]);
    const dead = await log(webhookId, '?status=dead&limit=100');
    expect(dead.body.pagination).toEqual({ limit: 6, offset: 0, total: 6 });
    expect(rows(dead)).toEqual(
      [28, 23, 18, 13, 8, 3].map((m) => [
        at(m).toISOString(),
        'dead',
        m % 3 === 0 ? 'task.failed' : 'task.completed',
      ]),
    );
    const failedType = await log(webhookId, '?event_type=task.failed&limit=100');
    expect(failedType.body.pagination).toEqual({ limit: 10, offset: 0, total: 10 });
    expect(failedType.body.events.map((e: any) => [e.scheduled_at, e.event_type])).toEqual(
      [27, 24, 21, 18, 15, 12, 9, 6, 3, 0].map((m) => [at(m).toISOString(), 'task.failed']),
    );
    const window = await log(
      webhookId,
      `?since=${encodeURIComponent(at(10).toISOString())}&until=${encodeURIComponent(at(14).toISOString())}`,
    );
    expect(window.body.events.map((e: any) => e.scheduled_at)).toEqual(
      [14, 13, 12, 11, 10].map((m) => at(m).toISOString()),
    );
    const combined = await log(
      webhookId,
      `?status=succeeded&event_type=task.completed&until=${at(9).toISOString()}`,
    );
    // Succeeded rows are i % 5 in {1, 4}, task.completed rows i % 3 != 0: of the first ten, rows 4 and 1.
    expect(combined.body.pagination).toEqual({ limit: 2, offset: 0, total: 2 });
    expect(rows(combined)).toEqual([
      [at(4).toISOString(), 'succeeded', 'task.completed'],
      [at(1).toISOString(), 'succeeded', 'task.completed'],
    ]);
    const offset = await log(
      webhookId,
      `?since=${encodeURIComponent('2026-11-20T01:10:00+01:00')}&limit=100`,
    );
    expect(offset.body.pagination.total).toBe(20);
  });

  it('includes the payload only when include_payload=true', async () => {
    const withPayload = await log(webhookId, '?include_payload=true&limit=1');
    expect(withPayload.body.events[0].payload).toEqual({ id: 'evt_29', type: 'task.completed', n: 29 });
    const without = await log(webhookId, '?include_payload=false&limit=1');
    expect(without.body.events[0].payload).toBeUndefined();
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1.5', 'limit'],
    ['limit=1&limit=2', 'limit'],
    ['offset=-1', 'offset'],
    ['offset=x', 'offset'],
    ['offset=1e3', 'offset'],
    ['offset=+1', 'offset'],
    ['limit=000', 'limit'],
    ['status=done', 'status'],
    ['event_type=task.exploded', 'event_type'],
    ['since=yesterday', 'since'],
    ['until=2026-13-45T99:00:00Z', 'until'],
    ['since=2026-02-30T00:00:00Z', 'since'],
    ['until=2026-04-31T12:00:00%2B02:00', 'until'],
    ['include_payload=yes', 'include_payload'],
    ['include_payload=TRUE', 'include_payload'],
    ['page=2', 'page'],
  ])('answers 400 validation_failed for %s', async (query, field) => {
    const res = await log(webhookId, `?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.details[0].field).toBe(field);
  });

  it.each([
    'status=dead&status=failed',
    'event_type=task.failed&event_type=task.completed',
    'include_payload=true&include_payload=false',
    'since=2026-11-22T00:00:00Z&since=2026-11-23T00:00:00Z',
  ])('says a parameter given twice must be given once: %s', async (query) => {
    const field = query.slice(0, query.indexOf('='));
    const res = await log(webhookId, `?${query}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      code: 'validation_failed',
      error: `${field} must be given once`,
      details: [{ field, rule: 'type', message: `${field} must be given once` }],
    });
  });
});

describe('delivery-time SSRF defence without an allow list', () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await workerWith({});
  });
  afterAll(() => worker.close());

  it.each([
    ['loopback.receiver-e2e.com', '127.0.0.1'],
    ['metadata.receiver-e2e.com', '169.254.169.254'],
    ['mixed.receiver-e2e.com', '10.0.0.7'],
  ])('refuses %s (resolving to %s) and records why, without the address', async (host, address) => {
    const path = newPath();
    const { id } = await createWebhook(`https://${host}:${receiver.port}${path}`);
    expect((await sendTest(id)).status).toBe(202);
    const row = await finalEntry(id);
    expect(row).toMatchObject({ status: 'failed', attempt: 1, response_status: null });
    // What the name resolves to on the worker's network is for the worker's log, not for the customer.
    expect(row.error_message).toBe(`delivery refused: ${host} resolves to a non-public address`);
    expect(row.error_message).not.toContain(address);
    expect(receiver.at(path)).toHaveLength(0);
  });
});

describe('signed delivery to a local HTTPS receiver (TARGET_ALLOW_CIDRS=127.0.0.1/32)', () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' });
  });
  afterAll(() => worker.close());

  const verify = (r: { headers: any; body: string }, secrets: string | string[]) =>
    verifyWebhookSignature({
      headers: r.headers,
      rawBody: r.body,
      secrets,
      now: () => clock.now().getTime(),
    });

  it('delivers a test event with the contract headers, body and a signature the verifier accepts', async () => {
    const path = newPath();
    const { id, secret } = await createWebhook(receiver.url(path), ['task.completed', 'session.failed']);
    const accepted = await sendTest(id, 'session.failed');
    expect(accepted.status).toBe(202);
    expect(Object.keys(accepted.body).sort()).toEqual(['event_type', 'external_event_id']);
    expect(accepted.body.event_type).toBe('session.failed');
    expect(accepted.body.external_event_id).toMatch(EVT);

    const [got] = await eventually(
      () => receiver.at(path).length === 1 && receiver.at(path),
      15_000,
      'delivery',
    );
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['user-agent']).toBe('Anchor-Webhooks/1.0');
    expect(got.headers['anchor-event']).toBe('session.failed');
    expect(got.headers['anchor-delivery-id']).toMatch(UUID);
    const timestamp = got.headers['anchor-timestamp'] as string;
    expect(Number(timestamp)).toBe(Math.floor(clock.now().getTime() / 1000));
    const sig = got.headers['anchor-signature'] as string;
    expect(sig).toMatch(new RegExp(`^t=${timestamp},v1=[0-9a-f]{64}$`));
    expect(verify(got, secret)).toMatchObject({ ok: true, secretIndex: 0 });
    expect(verify(got, 'f'.repeat(64))).toEqual({ ok: false, reason: 'no_matching_signature' });

    const body = JSON.parse(got.body);
    expect(Object.keys(body)).toEqual(['id', 'type', 'created', 'project_id', 'text', 'data']);
    expect(body).toMatchObject({
      id: accepted.body.external_event_id,
      type: 'session.failed',
      created: clock.now().toISOString(),
      project_id: projectId,
    });
    expect(typeof body.text).toBe('string');
    expect(body.data).toMatchObject({ test: true });

    const row = await finalEntry(id);
    expect(row).toMatchObject({
      id: got.headers['anchor-delivery-id'],
      external_event_id: accepted.body.external_event_id,
      event_type: 'session.failed',
      status: 'succeeded',
      attempt: 1,
      response_status: 200,
      error_message: null,
    });
    expect(row.completed_at).toBe(clock.now().toISOString());
    const withPayload = await log(id, '?include_payload=true');
    expect(JSON.stringify(withPayload.body.events[0].payload)).toBe(got.body);
  });

  it('signs with both secrets during the grace period, newest first, and only the new one after expiry', async () => {
    const path = newPath();
    const { id, secret: oldSecret } = await createWebhook(receiver.url(path));
    clock.advance(1000);
    const rotated = await api.http.post(`/v1/webhooks/${id}/rotate-secret`, {
      key,
      body: { grace_period_hours: 1 },
    });
    const newSecret = rotated.body.secret as string;

    await sendTest(id);
    const [during] = await eventually(() => receiver.at(path).length === 1 && receiver.at(path));
    const parsed = parseSignatureHeader(during.headers['anchor-signature'] as string);
    expect(parsed?.signatures).toHaveLength(2);
    expect(verify(during, newSecret)).toMatchObject({ ok: true });
    expect(verify(during, oldSecret)).toMatchObject({ ok: true });
    // Newest first: the first v1 is the new secret's.
    expect(
      verify(
        {
          ...during,
          headers: {
            ...during.headers,
            'anchor-signature': `t=${parsed!.timestamp},v1=${parsed!.signatures[0]}`,
          },
        },
        newSecret,
      ),
    ).toMatchObject({ ok: true });

    clock.advance(3600_000 + 1000);
    await sendTest(id);
    const after = (await eventually(() => receiver.at(path).length === 2 && receiver.at(path)))[1];
    expect(parseSignatureHeader(after.headers['anchor-signature'] as string)?.signatures).toHaveLength(1);
    expect(verify(after, newSecret)).toMatchObject({ ok: true });
    expect(verify(after, oldSecret)).toEqual({ ok: false, reason: 'no_matching_signature' });
  });

  it('retries 503 with the same delivery id and records success on attempt 3', async () => {
    const path = newPath();
    receiver.on(path, (n, _req, res) => {
      res.statusCode = n <= 2 ? 503 : 200;
      res.end();
    });
    const { id, secret } = await createWebhook(receiver.url(path));
    await sendTest(id);
    const row = await finalEntry(id);
    expect(row).toMatchObject({ status: 'succeeded', attempt: 3, response_status: 200, error_message: null });
    const got = receiver.at(path);
    expect(got).toHaveLength(3);
    expect(new Set(got.map((r) => r.headers['anchor-delivery-id']))).toEqual(new Set([row.id]));
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    for (const r of got) expect(verify(r, secret)).toMatchObject({ ok: true });
  });

  it('honours Retry-After on 429', async () => {
    const path = newPath();
    receiver.on(path, (n, _req, res) => {
      res.statusCode = n === 1 ? 429 : 200;
      if (n === 1) res.setHeader('Retry-After', '1');
      res.end();
    });
    const { id } = await createWebhook(receiver.url(path));
    // The retry schedule here is 0, 0, 0: the second attempt waits for the receiver's Retry-After alone.
    const scheduled = jest.spyOn(DeliveryQueue.prototype, 'schedule');
    try {
      await sendTest(id);
      await eventually(() => receiver.at(path).length === 2, 15_000, 'the retry');
      const row = await finalEntry(id);
      expect(row).toMatchObject({ status: 'succeeded', attempt: 2 });
      const retries = scheduled.mock.calls.flatMap(([attempts]) =>
        attempts.filter((a) => a.deliveryId === row.id && a.attempt === 2),
      );
      // Due one second (by the test's clock) after the 429, when the attempt was recorded.
      expect(retries).toEqual([expect.objectContaining({ delayMs: 1000 })]);
    } finally {
      scheduled.mockRestore();
    }
  });

  it('ends as failed on a 400, without retrying', async () => {
    const path = newPath();
    receiver.on(path, (_n, _req, res) => {
      res.statusCode = 400;
      res.end('bad');
    });
    const { id } = await createWebhook(receiver.url(path));
    await sendTest(id);
    const row = await finalEntry(id);
    expect(row).toMatchObject({
      status: 'failed',
      attempt: 1,
      response_status: 400,
      error_message: 'receiver answered HTTP 400',
    });
    expect(row.completed_at).not.toBeNull();
    expect(receiver.at(path)).toHaveLength(1);
  });

  it('ends as dead when the receiver stays unreachable through every attempt', async () => {
    const { id } = await createWebhook(`https://${NAME}:${await closedPort()}/gone`);
    await sendTest(id);
    const row = await finalEntry(id);
    expect(row).toMatchObject({ status: 'dead', attempt: 3, response_status: null });
    expect(row.error_message).toContain('ECONNREFUSED');
  });

  /** Runs `test` with a new project's webhook whose receiver never answers (see {@link blackHole}). */
  const withHangingWebhook = async (
    test: (
      hole: Awaited<ReturnType<typeof blackHole>>,
      project: { key: string },
      stuck: { id: string },
    ) => Promise<void>,
  ) => {
    const hole = await blackHole();
    try {
      const project = await api.newKey();
      const stuck = await createWebhook(
        `https://${NAME}:${hole.port}/hangs`,
        ['task.completed'],
        project.key,
      );
      await test(hole, project, stuck);
    } finally {
      hole.close();
    }
  };

  /**
   * More test events than the worker has slots, to a webhook whose receiver hangs: the attempts in flight reach
   * the share and never more, and another project's test event is delivered meanwhile.
   */
  const burstHeldToShare = async (
    hole: Awaited<ReturnType<typeof blackHole>>,
    webhookId: string,
    k: string,
  ) => {
    const burst = await Promise.all(
      Array.from({ length: DELIVERY_CONCURRENCY + 10 }, () => sendTest(webhookId, 'task.completed', k)),
    );
    expect(burst.map((r) => r.status)).toEqual(burst.map(() => 202));
    await eventually(() => hole.hung.size === DELIVERY_SHARE_PER_PROJECT, 15_000, 'the attempts in flight');
    await otherProjectDelivered();
    expect(hole.most()).toBe(DELIVERY_SHARE_PER_PROJECT);
  };

  it("holds a project whose receiver hangs to its share of the worker's attempts; other projects still get theirs", async () => {
    await withHangingWebhook(async (hole, slowProject, stuck) => {
      const sendStuck = async (n: number) => {
        for (let i = 0; i < n; i++)
          expect((await sendTest(stuck.id, 'task.completed', slowProject.key)).status).toBe(202);
      };
      await sendStuck(DELIVERY_SHARE_PER_PROJECT);
      await eventually(() => hole.hung.size === DELIVERY_SHARE_PER_PROJECT, 15_000, 'the attempts in flight');
      requestTimer += SLOW_REQUEST_MS + 1;
      // Now it is slow: its next attempts wait while its share is in flight.
      await sendStuck(30);

      await otherProjectDelivered();
      expect(hole.most()).toBe(DELIVERY_SHARE_PER_PROJECT);
    });
  });

  it("holds a new project's first burst to its share before any of its requests could be seen taking long", async () => {
    await withHangingWebhook(async (hole, newProject, stuck) => {
      // More attempts than the worker has slots, while no request has run long on the request timer (which this
      // test does not move): without the limit of unproven projects, they took every slot.
      await burstHeldToShare(hole, stuck.id, newProject.key);
    });
  });

  it("a project's webhook that answers is not held back by its webhook that hangs", async () => {
    await withHangingWebhook(async (hole, project, stuck) => {
      const path = newPath();
      const fine = await createWebhook(receiver.url(path), ['task.completed'], project.key);
      for (let i = 0; i < DELIVERY_SHARE_PER_PROJECT + 30; i++) {
        expect((await sendTest(stuck.id, 'task.completed', project.key)).status).toBe(202);
        // Once the share is in flight, its requests run long: that webhook is slow, its backlog waits.
        if (i === DELIVERY_SHARE_PER_PROJECT - 1) {
          await eventually(
            () => hole.hung.size === DELIVERY_SHARE_PER_PROJECT,
            15_000,
            'the attempts in flight',
          );
          requestTimer += SLOW_REQUEST_MS + 1;
        }
      }
      expect((await sendTest(fine.id, 'task.completed', project.key)).status).toBe(202);
      await eventually(() => receiver.at(path).length === 1, 15_000, "the webhook's delivery");
      // Delivered while every attempt to the webhook that hangs still held its slot (none had timed out yet), and
      // the share was never exceeded.
      expect(hole.closed()).toBe(0);
      expect(hole.most()).toBe(DELIVERY_SHARE_PER_PROJECT);
    });
  });

  it('holds a receiver that answered a few events and then hangs to the share, before it is seen to be slow', async () => {
    const hole = await blackHole(receiver.port);
    try {
      const project = await api.newKey();
      const path = newPath();
      const webhook = await createWebhook(
        `https://${NAME}:${hole.port}${path}`,
        ['task.completed'],
        project.key,
      );
      for (let i = 0; i < 3; i++)
        expect((await sendTest(webhook.id, 'task.completed', project.key)).status).toBe(202);
      await eventually(() => receiver.at(path).length === 3, 15_000, 'the first deliveries');
      // Proven by three quick answers (the request timer, which this test does not move, never sees one run
      // long), then it hangs: a burst of more attempts than the worker has slots.
      hole.hang();
      await burstHeldToShare(hole, webhook.id, project.key);
    } finally {
      hole.close();
    }
  });

  it('sends nothing more to a webhook disabled after its delivery was created, and re-enabling it does not resend', async () => {
    const path = newPath();
    const { id } = await createWebhook(receiver.url(path));
    await worker.close();
    let first;
    try {
      first = await sendTest(id);
      await api.http.patch(`/v1/webhooks/${id}`, { key, body: { enabled: false } });
    } finally {
      worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' });
    }
    expect(await finalEntry(id)).toMatchObject({
      status: 'failed',
      attempt: 1,
      response_status: null,
      error_message: 'webhook was disabled before this attempt; it is not sent',
    });
    await api.http.patch(`/v1/webhooks/${id}`, { key, body: { enabled: true } });
    // A later event goes out as usual; the one refused while disabled stays refused. (Both are recorded at the
    // same time of the test clock, so the log's order between them is not asserted.)
    const later = await sendTest(id);
    expect(later.status).toBe(202);
    await eventually(() => receiver.at(path).length === 1, 15_000, 'the delivery after re-enabling');
    const outcomes = await eventually(async () => {
      const events: { external_event_id: string; status: string }[] = (await log(id)).body.events;
      return events.every((e) => e.status !== 'pending') && events;
    });
    expect(Object.fromEntries(outcomes.map((e) => [e.external_event_id, e.status]))).toEqual({
      [later.body.external_event_id]: 'succeeded',
      [first.body.external_event_id]: 'failed',
    });
    expect(receiver.at(path)).toHaveLength(1);
  });

  it('a secret that cannot be decrypted holds up only its own webhook, which is retried and then dead', async () => {
    const healthy = [newPath(), newPath(), newPath(), newPath()];
    const hooks = await Promise.all(healthy.map((p) => createWebhook(receiver.url(p), ['task.cancelled'])));
    const brokenPath = newPath();
    const broken = await createWebhook(receiver.url(brokenPath), ['task.cancelled']);
    // Another webhook's ciphertext: sealed for that webhook, so it does not open for this one (as with a key
    // dropped from the ring, or a damaged row).
    await api.db.dataSource.query(
      `UPDATE webhook_secrets SET ciphertext = (SELECT ciphertext FROM webhook_secrets WHERE webhook_id = $1)
        WHERE webhook_id = $2`,
      [hooks[0].id, broken.id],
    );
    // One event for all five: their attempts are claimed and their secrets read together.
    const event = {
      id: eventIdForPublisherId(`unreadable-${randomUUID()}`),
      type: 'task.cancelled',
      projectId,
      text: null,
      data: {},
      created: clock.now(),
    };
    expect(await worker.get(DeliveriesService).recordPublished([event])).toEqual({ deliveries: 5 });
    for (const [i, { id }] of hooks.entries()) {
      expect(await finalEntry(id)).toMatchObject({ status: 'succeeded', attempt: 1 });
      expect(receiver.at(healthy[i])).toHaveLength(1);
    }
    // Every attempt of the schedule (0,0,0 here) made, none sent; the log says why without naming the key.
    expect(await finalEntry(broken.id)).toMatchObject({
      status: 'dead',
      attempt: 3,
      response_status: null,
      error_message:
        'a signing secret of the webhook cannot be decrypted; no attempts left in the retry schedule',
    });
    expect(receiver.at(brokenPath)).toHaveLength(0);
  });

  it('records a delivery of a webhook deleted before its attempt as failed', async () => {
    const path = newPath();
    const { id } = await createWebhook(receiver.url(path));
    await worker.close();
    try {
      await sendTest(id);
      await api.http.delete(`/v1/webhooks/${id}`, { key });
    } finally {
      worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' });
    }
    const rows = await eventually(async () => {
      const r: any[] = await api.db.dataSource.query('SELECT * FROM deliveries WHERE webhook_id = $1', [id]);
      return r[0]?.status !== 'pending' && r;
    });
    expect(rows[0]).toMatchObject({ status: 'failed', attempt: 1 });
    expect(rows[0].error_message).toContain('deleted');
    expect(receiver.at(path)).toHaveLength(0);
  });

  it('housekeeping queues a delivery whose job was lost, and purges rows past the 7-day retention', async () => {
    const path = newPath();
    const { id } = await createWebhook(receiver.url(path));
    const insert = (deliveryId: string, eventId: string, scheduledAt: Date, createdAt: Date) =>
      api.db.dataSource.query(
        `INSERT INTO deliveries (id, webhook_id, project_id, external_event_id, event_type, payload, status, attempt,
           scheduled_at, created_at)
         VALUES ($1, $2, $3, $4, 'task.completed', $5, 'pending', 0, $6, $7)`,
        [deliveryId, id, projectId, eventId, JSON.stringify({ id: eventId }), scheduledAt, createdAt],
      );
    const now = clock.now().getTime();
    const lost = randomUUID();
    await insert(lost, 'evt_LOST', new Date(now - 3600_000), new Date(now - 3600_000));
    const deliveries = worker.get(DeliveriesService);
    // Other suites' pending rows may be swept too; only this one's outcome is checked.
    expect(await deliveries.rescueStranded()).toBeGreaterThanOrEqual(1);
    await eventually(() => receiver.at(path).length === 1, 15_000, 'the rescued delivery');
    expect(receiver.at(path)[0].headers['anchor-delivery-id']).toBe(lost);
    // A second sweep finds it delivered (or still queued) and sends nothing more.
    await deliveries.rescueStranded();
    await settled([id]);
    expect(receiver.at(path)).toHaveLength(1);

    // Lost rows behind a page of merely late ones (their jobs are still queued) are found all the same.
    const late = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, d] of late.entries())
      await insert(d, `evt_LATE${i}`, new Date(now - 7200_000 + i), new Date(now));
    const queue = worker.get(DeliveryQueue);
    await queue.schedule(
      late.map((deliveryId) => ({ deliveryId, projectId, webhookId: id, attempt: 1, delayMs: 3600_000 })),
    );
    // Their attempts' jobs are found, in one round trip, and no other attempt's.
    expect(
      await queue.areQueued([
        ...late.map((deliveryId) => ({ deliveryId, attempt: 1 })),
        { deliveryId: late[0], attempt: 2 },
        { deliveryId: randomUUID(), attempt: 1 },
      ]),
    ).toEqual([true, true, true, false, false]);
    const behind = randomUUID();
    const behindPath = newPath();
    const second = await createWebhook(receiver.url(behindPath));
    await api.db.dataSource.query(
      `INSERT INTO deliveries (id, webhook_id, project_id, external_event_id, event_type, payload, status, attempt,
         scheduled_at, created_at)
       VALUES ($1, $2, $3, 'evt_BEHIND', 'task.completed', '{"id":"evt_BEHIND"}', 'pending', 0, $4, $4)`,
      [behind, second.id, projectId, new Date(now - 3600_000)],
    );
    try {
      await deliveries.rescueStranded(2);
      await eventually(
        () => receiver.at(behindPath).length === 1,
        15_000,
        'the lost delivery behind the late ones',
      );
    } finally {
      await api.db.dataSource.query('DELETE FROM deliveries WHERE id = ANY($1)', [late]);
    }

    const old = randomUUID();
    const recent = randomUUID();
    await insert(old, 'evt_OLD', new Date(now - 8 * 86_400_000), new Date(now - 8 * 86_400_000));
    await insert(recent, 'evt_RECENT', new Date(now + 86_400_000), new Date(now - 6 * 86_400_000));
    expect(await deliveries.purgeExpired(1)).toBeGreaterThanOrEqual(1);
    const left: { id: string }[] = await api.db.dataSource.query(
      'SELECT id FROM deliveries WHERE id = ANY($1)',
      [[old, recent]],
    );
    expect(left.map((r) => r.id)).toEqual([recent]);
  });

  it('housekeeping queues the attempt after one whose outcome was lost no sooner than the schedule allows', async () => {
    // A worker that stops between an attempt's claim and the write of its outcome leaves the row pending with its
    // scheduled_at still the due time of that attempt. The next attempt must still wait the schedule's delay after
    // the lost one went out, and a lost last attempt ends the delivery.
    const config = loadConfig();
    const schedule = [0, 600, 3600];
    const rescuer = new DeliveriesService(api.db, worker.get(DeliveryQueue), clock, {
      ...config,
      delivery: { ...config.delivery, retryScheduleSeconds: schedule },
    });
    const path = newPath();
    const { id } = await createWebhook(receiver.url(path));
    const now = clock.now().getTime();
    const minutes = (n: number) => new Date(now + n * 60_000);
    const insert = (deliveryId: string, attempt: number, scheduledAt: Date, attemptedAt: Date) =>
      api.db.dataSource.query(
        `INSERT INTO deliveries (id, webhook_id, project_id, external_event_id, event_type, payload, status, attempt,
           scheduled_at, attempted_at, created_at)
         VALUES ($1, $2, $3, $4, 'task.completed', $5, 'pending', $6, $7, $8, $9)`,
        [
          deliveryId,
          id,
          projectId,
          `evt_${deliveryId}`,
          '{}',
          attempt,
          scheduledAt,
          attemptedAt,
          minutes(-120),
        ],
      );
    // Attempt 2 was claimed 5 minutes ago, when it was due, and its outcome never written: attempt 3 waits until
    // an hour (the schedule's delay after attempt 2) after it went out.
    const cutShort = randomUUID();
    await insert(cutShort, 2, minutes(-5), minutes(-5));
    // Attempt 2's outcome was written (attempt 3 due 10 minutes ago), but attempt 3's job was lost: at once.
    const jobLost = randomUUID();
    await insert(jobLost, 2, minutes(-10), minutes(-70));
    // Attempt 3, the schedule's last, was claimed and its outcome never written: nothing is left to attempt.
    const lastLost = randomUUID();
    await insert(lastLost, 3, minutes(-4), minutes(-4));
    const jobs = new Queue(QueueName.Delivery, {
      connection: redisOptionsFromUrl(TEST_REDIS_URL),
      prefix: QUEUE_PREFIX,
    });
    try {
      expect(await rescuer.rescueStranded()).toBeGreaterThanOrEqual(3);
      const waiting = await jobs.getJob(deliveryAttemptJobId(cutShort, 3));
      expect(waiting?.opts.delay).toBe(55 * 60_000);
      expect(await jobs.getJob(deliveryAttemptJobId(lastLost, 4))).toBeUndefined();
      const rows: any[] = await api.db.dataSource.query(
        'SELECT id, status, attempt, error_message, scheduled_at FROM deliveries WHERE id = ANY($1)',
        [[cutShort, lastLost]],
      );
      const byId = new Map(rows.map((r) => [r.id, r]));
      expect(byId.get(cutShort)).toMatchObject({ status: 'pending', attempt: 2 });
      expect(byId.get(lastLost)).toMatchObject({ status: 'dead', attempt: 3, scheduled_at: minutes(-4) });
      expect(byId.get(lastLost).error_message).toContain('outcome was not recorded');
      // The one whose outcome was written goes out at once, as attempt 3.
      const sent = await eventually(async () => {
        const r: any[] = await api.db.dataSource.query(
          'SELECT status, attempt, attempted_at FROM deliveries WHERE id = $1',
          [jobLost],
        );
        return r[0]?.status === 'succeeded' && r[0];
      });
      expect(sent).toMatchObject({ attempt: 3, attempted_at: clock.now() });
      // A second sweep finds the waiting attempt's job and adds nothing.
      await rescuer.rescueStranded();
      expect((await jobs.getJob(deliveryAttemptJobId(cutShort, 3)))?.opts.delay).toBe(55 * 60_000);
    } finally {
      await jobs.remove(deliveryAttemptJobId(cutShort, 3));
      await jobs.close();
      await api.db.dataSource.query('DELETE FROM deliveries WHERE id = ANY($1)', [
        [cutShort, jobLost, lastLost],
      ]);
    }
  });

  it('housekeeping removes a deleted webhook once its delivery log is purged, and only then', async () => {
    const gone = await createWebhook('https://hooks.example.com/gone');
    const logged = await createWebhook('https://hooks.example.com/logged');
    const recent = await createWebhook('https://hooks.example.com/recent');
    const live = await createWebhook('https://hooks.example.com/live');
    for (const { id } of [gone, logged, recent])
      expect((await api.http.delete(`/v1/webhooks/${id}`, { key })).status).toBe(200);
    const now = clock.now().getTime();
    await api.db.dataSource.query('UPDATE webhooks SET deleted_at = $2 WHERE id = ANY($1)', [
      [gone.id, logged.id],
      new Date(now - 8 * 86_400_000),
    ]);
    // A delivery still within the 7 days keeps its webhook's row.
    await api.db.dataSource.query(
      `INSERT INTO deliveries (id, webhook_id, project_id, external_event_id, event_type, payload, status, attempt,
         scheduled_at, created_at)
       VALUES ($1, $2, $3, 'evt_KEPT', 'task.completed', '{}', 'failed', 1, $4, $4)`,
      [randomUUID(), logged.id, projectId, new Date(now - 86_400_000)],
    );
    expect(await worker.get(DeliveriesService).purgeDeletedWebhooks(1)).toBeGreaterThanOrEqual(1);
    const left: { id: string }[] = await api.db.dataSource.query(
      'SELECT id FROM webhooks WHERE id = ANY($1)',
      [[gone.id, logged.id, recent.id, live.id]],
    );
    expect(left.map((r) => r.id).sort()).toEqual([logged.id, recent.id, live.id].sort());
    // Its audit history stays (audit events keep the webhook's id, not a reference to its row).
    const history = await api.http.get(`/v1/audit-events?webhook_id=${gone.id}`, { key });
    expect(history.body.events.map((e: { type: string }) => e.type)).toEqual([
      'webhook.deleted',
      'webhook.created',
    ]);
  });

  describe('published events (EVENTS_STREAM)', () => {
    const publish = (event: unknown) => redis.xadd(STREAM, '*', 'event', JSON.stringify(event));
    const everyEntryAcknowledged = () =>
      eventually(
        async () => {
          const [count] = (await redis.xpending(STREAM, 'deliveries')) as [number];
          return count === 0;
        },
        10_000,
        'every entry acknowledged',
      );

    it('reach exactly the subscribed, enabled webhooks of the project, once each, across a worker restart', async () => {
      const paths = { a: newPath(), b: newPath(), c: newPath(), d: newPath(), e: newPath(), f: newPath() };
      const a = await createWebhook(receiver.url(paths.a), ['task.completed']);
      const b = await createWebhook(receiver.url(paths.b), ['task.failed']);
      const c = await createWebhook(receiver.url(paths.c), ['task.completed']);
      const d = await createWebhook(receiver.url(paths.d), ['task.completed', 'task.failed']);
      const e = await createWebhook(receiver.url(paths.e), ['task.failed', 'task.completed']);
      await api.http.patch(`/v1/webhooks/${c.id}`, { key, body: { enabled: false } });
      await api.http.delete(`/v1/webhooks/${d.id}`, { key });
      const other = await api.newKey();
      const f = await createWebhook(receiver.url(paths.f), ['task.completed'], other.key);

      // Garbage first: it must be set aside and acknowledged, never stall the consumer.
      const garbage = [
        await redis.xadd(STREAM, '*', 'event', 'not json'),
        await redis.xadd(STREAM, '*', 'other', 'x'),
        await publish({ type: 'task.exploded', project_id: projectId, data: {} }),
        await publish({ id: 'has a space', type: 'task.completed', project_id: projectId, data: {} }),
        // Nested too deep to be written out for a delivery: it used to fail its whole batch, again and again.
        await redis.xadd(
          STREAM,
          '*',
          'event',
          `{"type":"task.completed","project_id":"${projectId}","data":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
        ),
        await publish({
          type: 'task.completed',
          project_id: projectId,
          data: { blob: 'x'.repeat(256 * 1024) },
        }),
      ];
      // A publisher's own id of another form than evt_ + ULID maps to an evt_ ULID of its own: the same id
      // published again is the same event.
      const ownId = 'billing:run-42/attempt.1';
      await publish({ id: ownId, type: 'task.failed', project_id: projectId, data: { own: true } });
      await publish({ id: ownId, type: 'task.failed', project_id: projectId, data: { own: 'again' } });

      const N = 150;
      const explicitId = 'evt_01JD4W1B6T0Q8H3X2Z5N7M9K4P';
      await publish({
        id: explicitId,
        type: 'task.completed',
        project_id: projectId,
        text: 'hello',
        data: { n: -1 },
      });
      for (let i = 0; i < N; i++) {
        await publish({ type: 'task.completed', project_id: projectId, text: `done ${i}`, data: { n: i } });
        if (i === N / 2) {
          await eventually(() => receiver.at(paths.a).length > 0, 15_000, 'first deliveries');
          await worker.close();
          worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' });
        }
      }
      await publish({ type: 'task.failed', project_id: projectId, data: { n: 'f' } });

      await eventually(
        () => receiver.at(paths.a).length >= N + 1 && receiver.at(paths.e).length >= N + 3,
        30_000,
        'every delivery',
      );
      // Every entry fanned out, every delivery over: any duplicate has shown up by then.
      await everyEntryAcknowledged();
      await settled([a.id, b.id, c.id, d.id, e.id, f.id]);
      const ids = (p: string) => receiver.at(p).map((r) => JSON.parse(r.body).id as string);
      expect(receiver.at(paths.a)).toHaveLength(N + 1);
      expect(new Set(ids(paths.a)).size).toBe(N + 1);
      expect(ids(paths.a)).toContain(explicitId);
      expect(receiver.at(paths.e)).toHaveLength(N + 3);
      expect(new Set(ids(paths.e))).toEqual(new Set([...ids(paths.a), ...ids(paths.b)]));
      expect(receiver.at(paths.b)).toHaveLength(2);
      expect(ids(paths.b)).toContain(eventIdForPublisherId(ownId));
      for (const id of ids(paths.b)) expect(id).toMatch(EVT);
      expect(receiver.at(paths.c)).toHaveLength(0);
      expect(receiver.at(paths.d)).toHaveLength(0);
      expect(receiver.at(paths.f)).toHaveLength(0);
      for (const id of ids(paths.a)) expect(id).toMatch(EVT);
      const first = JSON.parse(receiver.at(paths.a).find((r) => JSON.parse(r.body).id === explicitId)!.body);
      expect(first).toMatchObject({
        type: 'task.completed',
        project_id: projectId,
        text: 'hello',
        data: { n: -1 },
      });

      const counts: { webhook_id: string; n: number; ok: number }[] = await api.db.dataSource.query(
        `SELECT webhook_id, count(*)::int AS n, count(*) FILTER (WHERE status = 'succeeded')::int AS ok
           FROM deliveries WHERE webhook_id = ANY($1) GROUP BY webhook_id`,
        [[a.id, b.id, c.id, d.id, e.id, f.id]],
      );
      expect(Object.fromEntries(counts.map((r) => [r.webhook_id, [r.n, r.ok]]))).toEqual({
        [a.id]: [N + 1, N + 1],
        [b.id]: [2, 2],
        [e.id]: [N + 3, N + 3],
      });
      // Every entry that was not an event is kept, with the reason, in the rejected stream.
      const rejected = (await redis.xrange(`${STREAM}:rejected`, '-', '+')) as [string, string[]][];
      const byEntry = new Map(
        rejected.map(([, f]) => {
          const field = (name: string) => f[f.indexOf(name) + 1];
          return [
            field('entry'),
            // The entry's fields as JSON, cut at 8 KiB (so those of the large entries no longer parse).
            { reason: field('reason'), fields: field('fields') },
          ];
        }),
      );
      expect(garbage.map((id) => byEntry.get(id as string)?.reason)).toEqual([
        '"event" is not JSON',
        'no "event" field',
        'type is not an event type of the catalog',
        'id is not a string of 1 to 128 visible ASCII characters',
        '"event" nests deeper than 64 levels',
        '"event" is larger than 256 KiB',
      ]);
      expect(JSON.parse(byEntry.get(garbage[1] as string)!.fields)).toEqual(['other', 'x']);
      expect(Buffer.byteLength(byEntry.get(garbage[5] as string)!.fields)).toBeLessThanOrEqual(8192);
      await everyEntryAcknowledged();
      // The worker stopped for the restart left the group: of this process's consumers (the workers of this
      // file run in it; other files' worker processes may have been killed on purpose), only the running one is.
      const consumers = (await redis.xinfo('CONSUMERS', STREAM, 'deliveries')) as string[][];
      const ours = consumers
        .map((c) => c[1])
        .filter((name) => name.startsWith(`${hostname()}-${process.pid}-`));
      expect(ours).toHaveLength(1);
    });

    it('goes on when the rejected stream cannot be written: the entry is logged and acknowledged', async () => {
      const path = newPath();
      await createWebhook(receiver.url(path), ['intervention.resolved']);
      // A key of another type where the rejected stream should be: every XADD to it fails (WRONGTYPE).
      await redis.set(`${STREAM}:rejected`, 'not a stream');
      const logged = jest.spyOn(Logger.prototype, 'error');
      try {
        const bad = await redis.xadd(STREAM, '*', 'event', '{');
        const good = (await publish({
          type: 'intervention.resolved',
          project_id: projectId,
          data: { after: bad },
        }))!;
        await eventually(() => receiver.at(path).length === 1, 15_000, 'the event after the bad entry');
        await everyEntryAcknowledged();
        const delivered = JSON.parse(receiver.at(path)[0].body);
        expect(delivered.data).toEqual({ after: bad });
        expect(delivered.id).toBe(eventIdFromStreamEntry(STREAM, good));
        // The entry that could not be kept is named in the error log, with its reason.
        expect(logged).toHaveBeenCalledWith(
          expect.objectContaining({ entries: [{ entry: bad, reason: '"event" is not JSON' }] }),
          'could not keep entries that are not events in the rejected stream; acknowledged anyway',
        );
      } finally {
        logged.mockRestore();
        await redis.del(`${STREAM}:rejected`);
      }
    });

    it('logs the entries of one read that are not events in one line, with how many there were', async () => {
      const warned = jest.spyOn(Logger.prototype, 'warn');
      try {
        // In one transaction: the next read takes them all at once.
        const transaction = redis.multi();
        for (let i = 0; i < 30; i++) transaction.xadd(STREAM, '*', 'event', `not json ${i}`);
        const ids = ((await transaction.exec()) ?? []).map(([, id]) => id as string);
        await eventually(
          () =>
            warned.mock.calls.some(
              ([, message]) => message === 'invalid events set aside in the rejected stream',
            ),
          15_000,
          'the warning',
        );
        await everyEntryAcknowledged();
        const lines = warned.mock.calls.filter(
          ([, message]) => message === 'invalid events set aside in the rejected stream',
        );
        expect(lines).toHaveLength(1);
        expect(lines[0][0]).toEqual({
          count: 30,
          // The first twenty are named.
          entries: ids.slice(0, 20).map((entry) => ({ entry, reason: '"event" is not JSON' })),
        });
      } finally {
        warned.mockRestore();
      }
    });

    it('delivers events whose stream entry ids lie past year 9999, and those after them', async () => {
      // A stream of its own: `*` ids go on from the largest id a stream has seen.
      const stream = `${STREAM}:far-${randomUUID()}`;
      const path = newPath();
      await createWebhook(receiver.url(path), ['task.cancelled']);
      const far = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32', EVENTS_STREAM: stream });
      try {
        const event = (n: number) =>
          JSON.stringify({ type: 'task.cancelled', project_id: projectId, data: { n } });
        // A publisher's own entry ids: year 10000 (no RFC 3339 timestamp), past what a Date holds, then `*`.
        await redis.xadd(stream, `${Date.UTC(10000, 0, 1)}-0`, 'event', event(1));
        await redis.xadd(stream, '9000000000000000-0', 'event', event(2));
        await redis.xadd(stream, '*', 'event', event(3));
        await eventually(() => receiver.at(path).length === 3, 15_000, 'every event of the stream');
        const bodies = receiver.at(path).map((r) => JSON.parse(r.body));
        expect(bodies.map((b) => b.data.n).sort()).toEqual([1, 2, 3]);
        for (const b of bodies) expect(b.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        await eventually(
          async () => ((await redis.xpending(stream, 'deliveries')) as [number])[0] === 0,
          10_000,
          'every entry acknowledged',
        );
      } finally {
        await far.close();
        await redis.del(stream);
      }
    });

    it('sets aside an event that is not valid UTF-8 instead of delivering it with its bytes replaced', async () => {
      const path = newPath();
      const { id } = await createWebhook(receiver.url(path), ['session.recording.ready']);
      const event = (text: Buffer) =>
        Buffer.concat([
          Buffer.from(`{"type":"session.recording.ready","project_id":"${projectId}","text":"`),
          text,
          Buffer.from('","data":{}}'),
        ]);
      // Latin-1 "café", a lone continuation byte, a cut 4-byte sequence, an encoded surrogate (CESU-8).
      const bad = [
        Buffer.from('caf\xe9', 'latin1'),
        Buffer.from([0x61, 0x80]),
        Buffer.from([0xf0, 0x9f, 0x98]),
        Buffer.from([0xed, 0xa0, 0x80]),
      ];
      const ids = [];
      for (const text of bad) ids.push(await redis.xadd(STREAM, '*', 'event', event(text)));
      await redis.xadd(STREAM, '*', 'event', event(Buffer.from('café ✓ 😀')));
      await eventually(() => receiver.at(path).length === 1, 15_000, 'the valid event');
      expect(JSON.parse(receiver.at(path)[0].body).text).toBe('café ✓ 😀');
      await everyEntryAcknowledged();
      await settled([id]);
      expect(receiver.at(path)).toHaveLength(1);
      const rejected = (await redis.xrange(`${STREAM}:rejected`, '-', '+')) as [string, string[]][];
      const reasons = new Map(
        rejected.map(([, f]) => [f[f.indexOf('entry') + 1], f[f.indexOf('reason') + 1]]),
      );
      expect(ids.map((id) => reasons.get(id as string))).toEqual(bad.map(() => '"event" is not valid UTF-8'));
    });

    it('sets aside an entry too large to be kept whole as JSON, and delivers the events after it', async () => {
      const path = newPath();
      const { id } = await createWebhook(receiver.url(path), ['batch.completed']);
      // 96 MiB of control bytes: their JSON (six characters each) is longer than any string V8 can hold. Keeping
      // the entry's fields in the rejected stream used to throw for the whole batch, again and again.
      const huge = await redis.xadd(STREAM, '*', 'event', Buffer.alloc(96 * 1024 * 1024, 1), 'source', 'x');
      await publish({ type: 'batch.completed', project_id: projectId, data: { after: huge } });
      await eventually(() => receiver.at(path).length === 1, 30_000, 'the event after the large entry');
      expect(JSON.parse(receiver.at(path)[0].body).data).toEqual({ after: huge });
      await everyEntryAcknowledged();
      await settled([id]);
      const rejected = (await redis.xrange(`${STREAM}:rejected`, '-', '+')) as [string, string[]][];
      const entry = rejected.find(([, f]) => f[f.indexOf('entry') + 1] === huge)!;
      const field = (name: string) => entry[1][entry[1].indexOf(name) + 1];
      expect(field('reason')).toBe('"event" is larger than 256 KiB');
      const fields = field('fields');
      expect(Buffer.byteLength(fields)).toBeLessThanOrEqual(8192);
      expect(fields.startsWith(`["event","${'\\u0001'.repeat(100)}`)).toBe(true);
      expect(fields.endsWith('…')).toBe(true);
    });

    it('has Redis cut the fields of entries read together, or taken over, to just past the largest event', async () => {
      const { id } = await createWebhook(receiver.url(newPath()), ['batch.completed']);
      await worker.close();
      // What the worker got from Redis for each read, in bytes of entry fields.
      const handle = jest.spyOn(ingestorPrototype, 'handle');
      const big = Buffer.alloc(8 * 1024 * 1024, 'x');
      const fieldBytes = () =>
        handle.mock.calls.flatMap(([, entries]) =>
          entries.flatMap(([, f]) => (f ?? []).map((b) => b.length)),
        );
      const huge: string[] = [];
      try {
        // Twelve entries of 16 MiB, read together (and six more taken over from a consumer that died): whole, a read
        // of 500 such entries brought 8 GiB into the worker, which killed it and then every worker taking them over.
        for (let i = 0; i < 6; i++) huge.push((await redis.xadd(STREAM, '*', 'event', big, 'blob', big))!);
        await readAsConsumerThatDies();
        for (let i = 0; i < 6; i++) huge.push((await redis.xadd(STREAM, '*', 'event', big, 'blob', big))!);
        await publish({ id: 'after-huge', type: 'batch.completed', project_id: projectId, data: {} });
        worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' });
        await everyEntryAcknowledged();
        await eventually(
          async () =>
            (await api.db.dataSource.query('SELECT id FROM deliveries WHERE webhook_id = $1', [id]))
              .length === 1,
          15_000,
          'the event after the large entries recorded',
        );
        expect(fieldBytes().length).toBeGreaterThanOrEqual(4 * huge.length);
        expect(Math.max(...fieldBytes())).toBe(256 * 1024 + 1);
      } finally {
        handle.mockRestore();
      }
      const rejected = (await redis.xrange(`${STREAM}:rejected`, '-', '+')) as [string, string[]][];
      for (const entry of huge) {
        const found = rejected.find(([, f]) => f[f.indexOf('entry') + 1] === entry);
        expect(found?.[1][found[1].indexOf('reason') + 1]).toBe('"event" is larger than 256 KiB');
      }
      await settled([id]);
    });

    it('sets aside an entry with more than one "event" field: one entry is one event', async () => {
      const path = newPath();
      const { id } = await createWebhook(receiver.url(path), ['batch.failed']);
      const event = (n: number) =>
        JSON.stringify({ type: 'batch.failed', project_id: projectId, data: { n } });
      const two = await redis.xadd(STREAM, '*', 'event', event(1), 'event', event(2));
      await redis.xadd(STREAM, '*', 'event', event(3), 'source', 'billing');
      await eventually(() => receiver.at(path).length === 1, 15_000, 'the entry with one event');
      expect(JSON.parse(receiver.at(path)[0].body).data).toEqual({ n: 3 });
      await everyEntryAcknowledged();
      await settled([id]);
      expect(receiver.at(path)).toHaveLength(1);
      const rejected = (await redis.xrange(`${STREAM}:rejected`, '-', '+')) as [string, string[]][];
      const entry = rejected.find(([, f]) => f[f.indexOf('entry') + 1] === two)!;
      expect(entry[1][entry[1].indexOf('reason') + 1]).toBe('more than one "event" field');
    });

    it('records an event read twice only once per webhook', async () => {
      const path = newPath();
      const { id } = await createWebhook(receiver.url(path), ['task.healed']);
      const deliveries = worker.get(DeliveriesService);
      const event = {
        id: 'evt_01JD4W1B6T0Q8H3X2Z5N7M9K5Q',
        type: 'task.healed',
        projectId,
        text: null,
        data: { x: 1 },
        created: clock.now(),
      };
      const [first, second] = await Promise.all([
        deliveries.recordPublished([event]),
        deliveries.recordPublished([event, event]),
      ]);
      expect(first.deliveries + second.deliveries).toBe(1);
      await eventually(() => receiver.at(path).length === 1, 15_000, 'the delivery');
      expect(await deliveries.recordPublished([event])).toEqual({ deliveries: 0 });
      await settled([id]);
      expect(receiver.at(path)).toHaveLength(1);
      const rows: unknown[] = await api.db.dataSource.query(
        'SELECT id FROM deliveries WHERE webhook_id = $1',
        [id],
      );
      expect(rows).toHaveLength(1);
    });

    it('lists the events of one batch newest first, in reverse of their order in the stream', async () => {
      const hooks = [
        await createWebhook(receiver.url(newPath()), ['session.failed']),
        await createWebhook(receiver.url(newPath()), ['session.failed']),
      ];
      // Large enough (48 bodies of 200 KB) that the batch is written in more than one statement.
      const events = Array.from({ length: 24 }, (_, i) => ({
        id: eventIdForPublisherId(`order-${i}`),
        type: 'session.failed',
        projectId,
        text: null,
        data: { i, pad: 'x'.repeat(200_000) },
        created: clock.now(),
      }));
      expect(await worker.get(DeliveriesService).recordPublished(events)).toEqual({ deliveries: 48 });
      for (const { id } of hooks) {
        const log = await api.http.get(`/v1/webhooks/${id}/events`, { key });
        expect(log.body.events.map((e: { external_event_id: string }) => e.external_event_id)).toEqual(
          events.map((e) => e.id).reverse(),
        );
      }
      // One event's deliveries share their time, a microsecond per event of the batch.
      const times: { external_event_id: string; n: number; at: string }[] = await api.db.dataSource.query(
        `SELECT external_event_id, count(DISTINCT created_at)::int AS n, min(created_at)::text AS at
           FROM deliveries WHERE webhook_id = ANY($1) GROUP BY external_event_id`,
        [hooks.map((h) => h.id)],
      );
      expect(times.map((t) => t.n)).toEqual(Array(24).fill(1));
      expect(new Set(times.map((t) => t.at)).size).toBe(24);
    });

    it('records a read of large events in parts, and the log still lists them in reverse of the stream', async () => {
      const { id } = await createWebhook(receiver.url(newPath()), ['session.completed']);
      await worker.close();
      const recorded = jest.spyOn(DeliveriesService.prototype, 'recordPublished');
      const entries: string[] = [];
      try {
        // 24 events of 200 KB, read together: parsed all at once, events like these (a parsed event can take
        // twenty times its bytes) held GiBs.
        for (let i = 0; i < 24; i++)
          entries.push(
            (await publish({
              id: `part-${i}`,
              type: 'session.completed',
              project_id: projectId,
              data: { i, pad: 'x'.repeat(200_000) },
            }))!,
          );
        worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' });
        await eventually(
          async () =>
            (await api.db.dataSource.query('SELECT id FROM deliveries WHERE webhook_id = $1', [id]))
              .length === 24,
          15_000,
          'every event recorded',
        );
        await everyEntryAcknowledged();
        const sizes = recorded.mock.calls.map(([events]) =>
          events.reduce((n, e) => n + JSON.stringify(e.data).length, 0),
        );
        expect(sizes.length).toBeGreaterThan(1);
        for (const size of sizes) expect(size).toBeLessThanOrEqual(4 * 1024 * 1024);
      } finally {
        recorded.mockRestore();
      }
      await settled([id]);
      const log = await api.http.get(`/v1/webhooks/${id}/events?limit=100`, { key });
      expect(log.body.events.map((e: { external_event_id: string }) => e.external_event_id)).toEqual(
        entries.map((_, i) => eventIdForPublisherId(`part-${i}`)).reverse(),
      );
    });

    /** Reads what is new in the stream as another consumer of the group, which then never acknowledges it. */
    const readAsConsumerThatDies = async () =>
      (await redis.xreadgroup(
        'GROUP',
        'deliveries',
        'crashed-consumer',
        'COUNT',
        1000,
        'STREAMS',
        STREAM,
        '>',
      )) as [string, [string, string[]][]][] | null;

    it('derives the same event id when an unacknowledged entry is read again', async () => {
      const path = newPath();
      const { id } = await createWebhook(receiver.url(path), ['batch.completed']);
      await worker.close();
      let entryId: string;
      try {
        entryId = (await publish({ type: 'batch.completed', project_id: projectId, data: {} }))!;
        // Another consumer reads the entry and dies without acknowledging it.
        const read = await readAsConsumerThatDies();
        expect(read?.[0][1].map(([id]) => id)).toContain(entryId);
      } finally {
        worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' });
      }
      const [got] = await eventually(
        () => receiver.at(path).length === 1 && receiver.at(path),
        15_000,
        'reclaim',
      );
      // Derived from the stream entry, as the first read's would have been: the same whichever consumer reads it.
      expect(JSON.parse(got.body).id).toBe(eventIdFromStreamEntry(STREAM, entryId!));
      await everyEntryAcknowledged();
      await settled([id]);
      expect(receiver.at(path)).toHaveLength(1);
    });

    it('raises the delivery count of an entry it takes over, as a claim returning the entry would', async () => {
      const path = newPath();
      await createWebhook(receiver.url(path), ['batch.completed']);
      await worker.close();
      const original = ingestorPrototype.handle;
      // What XPENDING said of the entry when the worker that took it over came to handle it.
      const seen: { consumer: string; deliveries: number }[] = [];
      let entryId: string;
      const handle = jest.spyOn(ingestorPrototype, 'handle').mockImplementation(async function (
        this: unknown,
        r,
        entries,
      ) {
        if (entries.some(([id]) => id === entryId)) {
          const [[, consumer, , deliveries]] = (await redis.xpending(
            STREAM,
            'deliveries',
            entryId,
            entryId,
            1,
          )) as [string, string, number, number][];
          seen.push({ consumer, deliveries });
        }
        return original.call(this, r, entries);
      });
      try {
        try {
          entryId = (await publish({ type: 'batch.completed', project_id: projectId, data: {} }))!;
          await readAsConsumerThatDies();
        } finally {
          worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' });
        }
        await eventually(() => receiver.at(path).length === 1, 15_000, 'the entry taken over');
      } finally {
        handle.mockRestore();
      }
      // Read once by the consumer that died, then taken over by this worker's.
      expect(seen).toEqual([{ consumer: expect.any(String), deliveries: 2 }]);
      expect(seen[0].consumer.startsWith(`${hostname()}-${process.pid}-`)).toBe(true);
      await everyEntryAcknowledged();
    });

    it('sets aside an entry deleted from the stream while a dead consumer held it, once taken over', async () => {
      await worker.close();
      let entryId: string;
      try {
        entryId = (await publish({ type: 'batch.completed', project_id: projectId, data: {} }))!;
        // Another consumer reads the entry and dies; then the entry is deleted from the stream.
        await readAsConsumerThatDies();
        expect(await redis.xdel(STREAM, entryId)).toBe(1);
      } finally {
        worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' });
      }
      const reason = await eventually(
        async () => {
          const rejected = (await redis.xrange(`${STREAM}:rejected`, '-', '+')) as [string, string[]][];
          const entry = rejected.find(([, f]) => f[f.indexOf('entry') + 1] === entryId);
          return entry?.[1][entry[1].indexOf('reason') + 1];
        },
        15_000,
        'the deleted entry set aside',
      );
      expect(reason).toBe('entry was deleted from the stream');
      await everyEntryAcknowledged();
    });

    it('removes the consumers killed workers left in the group, never one holding entries', async () => {
      const ingestor = worker.get(EventsIngestor);
      const names = async () =>
        ((await redis.xinfo('CONSUMERS', STREAM, 'deliveries')) as unknown[][]).map((c) => String(c[1]));
      // What a SIGKILLed worker leaves: its consumer, which nothing removes (it never ran its clean stop).
      await redis.xgroup('CREATECONSUMER', STREAM, 'deliveries', 'killed-worker');
      // And one that a dead worker left holding an entry nobody has taken over yet: an entry the group has read
      // and acknowledged, put back on that consumer's pending list.
      const held = (await redis.xadd(STREAM, '*', 'x', 'not an event'))!;
      await eventually(async () => {
        const groups = (await redis.xinfo('GROUPS', STREAM)) as unknown[][];
        const g = groups.map((x) => Object.fromEntries(chunk(x))).find((x) => x.name === 'deliveries')!;
        return Number(g.pending) === 0 && String(g['last-delivered-id']) === held;
      });
      await redis.xgroup('CREATECONSUMER', STREAM, 'deliveries', 'killed-holding');
      await redis.xclaim(STREAM, 'deliveries', 'killed-holding', 0, held, 'FORCE');
      expect(await names()).toEqual(expect.arrayContaining(['killed-worker', 'killed-holding']));
      // Not idle for long enough yet: kept.
      await ingestor.forgetDeadConsumers(redis);
      expect(await names()).toEqual(expect.arrayContaining(['killed-worker']));
      await ingestor.forgetDeadConsumers(redis, 0);
      const left = await names();
      expect(left).not.toContain('killed-worker');
      expect(left).toContain('killed-holding');
      expect(left.filter((name) => name.startsWith(`${hostname()}-${process.pid}-`))).toHaveLength(1);
      // Clean up the held entry for the tests after this one.
      await redis.xgroup('DELCONSUMER', STREAM, 'deliveries', 'killed-holding');
    });

    it('trims the stream of entries every consumer group is done with, and only those', async () => {
      // Events for a project without webhooks: read and acknowledged at once.
      const nobody = randomUUID();
      const batch = redis.pipeline();
      for (let i = 0; i < 300; i++)
        batch.xadd(
          STREAM,
          '*',
          'event',
          JSON.stringify({ type: 'task.completed', project_id: nobody, data: { i } }),
        );
      const ids = ((await batch.exec()) ?? []).map(([, id]) => id as string);
      const ours = async () => {
        const groups = (await redis.xinfo('GROUPS', STREAM)) as unknown[][];
        const g = groups.map((x) => Object.fromEntries(chunk(x))).find((x) => x.name === 'deliveries')!;
        return { last: String(g['last-delivered-id']), pending: Number(g.pending) };
      };
      await eventually(async () => {
        const g = await ours();
        return g.pending === 0 && g.last === ids[299];
      });
      const ingestor = worker.get(EventsIngestor);
      const warned = jest.spyOn(Logger.prototype, 'warn');
      const heldBack = () =>
        warned.mock.calls.filter(([, message]) => String(message).includes('holds its trimming back'));
      // Another service's group that has read up to the 150th entry: that entry and all after it stay, and a
      // stream left longer than the warning's length says which group holds it back.
      await redis.xgroup('CREATE', STREAM, 'another-service', ids[149]);
      try {
        await ingestor.trim(redis, 100);
        const kept = (await redis.xrange(STREAM, ids[149], '+')).map(([id]) => id);
        expect(kept).toEqual(ids.slice(149));
        expect(heldBack()).toEqual([
          [expect.objectContaining({ group: 'another-service', position: ids[149] }), expect.any(String)],
        ]);
      } finally {
        await redis.xgroup('DESTROY', STREAM, 'another-service');
      }
      // A group that has read nothing yet keeps every entry, and says so the same way.
      await redis.xgroup('CREATE', STREAM, 'not-reading-yet', '0');
      try {
        expect(await ingestor.trim(redis, 100)).toBe(0);
        expect(heldBack()).toHaveLength(2);
        expect(heldBack()[1][0]).toMatchObject({ group: 'not-reading-yet', position: '0-0' });
      } finally {
        await redis.xgroup('DESTROY', STREAM, 'not-reading-yet');
        warned.mockRestore();
      }
      // With only the deliveries group left, whole nodes before the last entry it read go (about 100 entries a
      // node): at most one node's worth stays before it.
      expect(await ingestor.trim(redis)).toBeGreaterThan(0);
      const left = (await redis.xrange(STREAM, '-', '+')).map(([id]) => id);
      expect(left[left.length - 1]).toBe(ids[299]);
      expect(left.length).toBeLessThanOrEqual(101);
      // And reading goes on after a trim.
      const later = newPath();
      await createWebhook(receiver.url(later), ['batch.failed']);
      await publish({ type: 'batch.failed', project_id: projectId, data: { i: 300 } });
      await eventually(() => receiver.at(later).length === 1, 15_000, 'a delivery after the trim');
    });
  });
});

describe('a receiver that answers at once and then trickles its body', () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    const allow = parseCidrList('127.0.0.1/32');
    worker = await workerWith({ TARGET_ALLOW_CIDRS: '127.0.0.1/32' }, [
      {
        token: SsrfSafeSender,
        // The production sender but for the time a body may take (1 s): here the bodies come when the test says.
        value: new SsrfSafeSender({
          isAllowedAddress: (address) => isPublicAddress(address, allow),
          resolve: resolver,
          tls: { ca: receiver.cert },
          drainTimeoutMs: 600_000,
        }),
      },
    ]);
  });
  afterAll(() => worker.close());

  it("is held to its project's share while the bodies come; another project's event to the same host is delivered", async () => {
    const path = newPath();
    const bodies: ServerResponse[] = [];
    let trickling = true;
    receiver.on(path, (_n, _req, res) => {
      res.writeHead(200, { 'Content-Length': '2' }).write('o');
      if (trickling) bodies.push(res);
      else res.end('k');
    });
    const project = await api.newKey();
    const webhook = await createWebhook(receiver.url(path), ['task.completed'], project.key);
    // More attempts than the worker has slots, and than it has connections to a host (256).
    const count = 300;
    try {
      const burst = await Promise.all(
        Array.from({ length: count }, () => sendTest(webhook.id, 'task.completed', project.key)),
      );
      expect(burst.map((r) => r.status)).toEqual(burst.map(() => 202));
      await eventually(
        () => receiver.at(path).length >= DELIVERY_SHARE_PER_PROJECT,
        15_000,
        'the attempts in flight',
      );
      // The other project's webhook is on the same host, so its attempt needs a connection of the same pool.
      // Before, an attempt was over with its status: the trickling bodies kept their connections with no slot
      // held, the receiver (answering at once) took more and more attempts, and the pool was soon all theirs.
      const other = await otherProjectDelivered();
      expect(await finalEntry(other.id, other.key)).toMatchObject({
        status: 'succeeded',
        response_status: 200,
      });
      // An attempt lasts until its body is read: none is over, and the share was never exceeded.
      expect(receiver.at(path).length).toBe(DELIVERY_SHARE_PER_PROJECT);
      const [{ done }] = await api.db.dataSource.query(
        `SELECT count(*)::int AS done FROM deliveries WHERE webhook_id = $1 AND status <> 'pending'`,
        [webhook.id],
      );
      expect(done).toBe(0);
    } finally {
      trickling = false;
      for (const res of bodies) res.end('k');
    }
    // The status decides an attempt, however its body came.
    await settled([webhook.id]);
    const rows: { status: string; attempt: number; response_status: number; error_message: string | null }[] =
      await api.db.dataSource.query(
        'SELECT status, attempt, response_status, error_message FROM deliveries WHERE webhook_id = $1',
        [webhook.id],
      );
    expect(rows).toHaveLength(count);
    for (const row of rows)
      expect(row).toEqual({ status: 'succeeded', attempt: 1, response_status: 200, error_message: null });
    expect(receiver.at(path).length).toBe(count);
  });
});

describe('Postgres going away in the middle of an attempt', () => {
  let worker: RunningWorker;
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await TcpProxy.inFrontOf(TEST_DATABASE_URL);
    worker = await workerWith({
      TARGET_ALLOW_CIDRS: '127.0.0.1/32',
      DATABASE_URL: proxy.rewrite(TEST_DATABASE_URL),
    });
  });
  afterAll(async () => {
    proxy.restore();
    await worker.close();
    await proxy.stop();
  });

  it('records the outcome once Postgres is back, without sending the attempt again', async () => {
    const path = newPath();
    const { id } = await createWebhook(receiver.url(path));
    let answer: (() => void) | undefined;
    receiver.on(path, (_n, _req, res) => (answer = () => res.end('ok')));
    expect((await sendTest(id)).status).toBe(202);
    await eventually(() => answer !== undefined, 15_000, 'the attempt to arrive');
    // The receiver answers while the worker cannot reach Postgres: the outcome cannot be written yet.
    proxy.cut();
    answer!();
    await eventually(() => proxy.refused >= 2, 15_000, 'the worker to try Postgres again during the outage');
    proxy.restore();
    expect(await finalEntry(id)).toMatchObject({ status: 'succeeded', attempt: 1, response_status: 200 });
    expect(receiver.at(path)).toHaveLength(1);
  });

  it('says once that published events cannot be read while Postgres is away, and once that they are again', async () => {
    const path = newPath();
    await createWebhook(receiver.url(path));
    const warned = jest.spyOn(Logger.prototype, 'warn');
    const said = jest.spyOn(Logger.prototype, 'log');
    // Each round reads the event again and tries to record it.
    const rounds = jest.spyOn(DeliveriesService.prototype, 'recordPublished');
    const failed = () =>
      warned.mock.calls.filter((c) => c[1] === 'reading published events failed; retrying').length;
    try {
      proxy.cut();
      await redis.xadd(
        STREAM,
        '*',
        'event',
        JSON.stringify({ type: 'task.completed', project_id: projectId, data: {} }),
      );
      await eventually(() => failed() === 1, 15_000, 'the first round failing');
      // Every round fails, once a second, for as long as Postgres stays away.
      const before = rounds.mock.calls.length;
      await eventually(() => rounds.mock.calls.length >= before + 3, 15_000, 'more rounds failing');
      expect(failed()).toBe(1);
      proxy.restore();
      await eventually(
        () => receiver.at(path).length === 1,
        15_000,
        'the event delivered once Postgres is back',
      );
      expect(said).toHaveBeenCalledWith('reading published events again');
      expect(failed()).toBe(1);
    } finally {
      proxy.restore();
      warned.mockRestore();
      said.mockRestore();
      rounds.mockRestore();
    }
  });
});

describe('Redis losing the answer to a read of published events', () => {
  let worker: RunningWorker;
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    worker = await startWorker({
      clock,
      env: { TARGET_ALLOW_CIDRS: '127.0.0.1/32', REDIS_URL: proxy.rewrite(TEST_REDIS_URL) },
      overrides: [
        { token: DNS_RESOLVER, value: resolver },
        { token: REQUEST_TIMER, value: () => requestTimer },
        { token: DELIVERY_TLS, value: { ca: receiver.cert } },
        {
          token: EVENTS_INGEST_OPTIONS,
          // No taking over of pending entries within the test: only the consumer itself can find them again.
          value: { ...DEFAULT_EVENTS_INGEST_OPTIONS, blockMs: 200, claimMinIdleMs: 3_600_000 },
        },
      ],
    });
  });
  afterAll(async () => {
    proxy.restore();
    await worker.close();
    await proxy.stop();
  });

  it('reads the entries of the lost answer again once the connection is back, not a minute later', async () => {
    const path = newPath();
    await createWebhook(receiver.url(path));
    const publish = (text: string) =>
      redis.xadd(
        STREAM,
        '*',
        'event',
        JSON.stringify({ type: 'task.completed', project_id: projectId, text, data: {} }),
      );
    await publish('before');
    await eventually(() => receiver.at(path).length === 1, 15_000, 'the consumer reading');
    // Redis hands the entry to the consumer, and the answer is lost with its connection.
    const marker = `lost-${randomUUID()}`;
    proxy.loseAnswerHolding(marker);
    await publish(marker);
    await eventually(() => receiver.at(path).length === 2, 15_000, 'the entry of the lost answer delivered');
    expect(JSON.parse(receiver.at(path)[1].body).text).toBe(marker);
    const [pending] = (await redis.xpending(STREAM, 'deliveries')) as [number];
    expect(pending).toBe(0);
  });
});

/** Field-value pairs of a Redis reply as [name, value] entries. */
function chunk(flat: unknown[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), flat[i + 1]]);
  return out;
}
