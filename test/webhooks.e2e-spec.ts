import { Client } from 'pg';
import { ManualClock, fingerprint } from '@app/domain';
import { startApi, type RunningApi } from './support/api-harness';
import { rawExchange } from './support/raw-http';
import { eventually } from './support/eventually';
import { TEST_DATABASE_URL } from './support/test-env';

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const PUBLIC_FIELDS = [
  'created_at',
  'description',
  'enabled',
  'id',
  'project_id',
  'subscribed_events',
  'updated_at',
  'url',
];

describe('webhooks API (Anchor-compatible routes)', () => {
  let api: RunningApi;
  // The API's clock: it moves only when a test moves it.
  const clock = new ManualClock();
  let key: string;
  let projectId: string;

  beforeAll(async () => {
    api = await startApi({ clock });
  });
  afterAll(() => api.close());
  beforeEach(async () => {
    ({ key, projectId } = await api.newKey());
  });

  const create = (body: unknown, k = key) => api.http.post('/v1/webhooks', { key: k, body });
  const valid = { url: 'https://hooks.example.com/anchor?x=1', subscribed_events: ['task.completed'] };

  describe('POST /v1/webhooks', () => {
    it('creates a webhook and returns its secret exactly once', async () => {
      const res = await create({
        ...valid,
        description: 'prod',
        subscribed_events: ['task.failed', 'task.completed', 'task.failed'],
      });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual([...PUBLIC_FIELDS, 'secret'].sort());
      expect(res.body.id).toMatch(/^wh_/);
      expect(res.body.id.slice(3)).toMatch(ULID);
      expect(res.body.project_id).toBe(projectId);
      expect(res.body.secret).toMatch(/^[0-9a-f]{64}$/);
      expect(res.body.subscribed_events).toEqual(['task.failed', 'task.completed']);
      expect(res.body.description).toBe('prod');
      expect(res.body.enabled).toBe(true);
      expect(res.body.created_at).toMatch(ISO_MS);
      expect(res.body.updated_at).toBe(res.body.created_at);
      const again = await api.http.get(`/v1/webhooks/${res.body.id}`, { key });
      expect(again.body.secret).toBeUndefined();
      const list = await api.http.get('/v1/webhooks', { key });
      expect(JSON.stringify(list.body)).not.toContain(res.body.secret);
    });

    it('removes duplicates however many there are (the body limit bounds the list)', async () => {
      const res = await create({
        ...valid,
        subscribed_events: [...Array(300).fill('task.failed'), 'task.completed', 'task.failed'],
      });
      expect(res.status).toBe(201);
      expect(res.body.subscribed_events).toEqual(['task.failed', 'task.completed']);
    });

    it('stores the secret encrypted, never in the clear', async () => {
      const res = await create(valid);
      const rows: { ciphertext: Buffer; fingerprint: string }[] = await api.db.dataSource.query(
        'SELECT ciphertext, fingerprint FROM webhook_secrets WHERE webhook_id = $1',
        [res.body.id],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0].ciphertext.toString('latin1')).not.toContain(res.body.secret);
      expect(rows[0].ciphertext.toString('hex')).not.toContain(res.body.secret);
      const dump = JSON.stringify(
        await api.db.dataSource.query('SELECT * FROM audit_events WHERE webhook_id = $1', [res.body.id]),
      );
      expect(dump).not.toContain(res.body.secret);
    });

    it('description is optional and null when absent; at most 256 characters', async () => {
      expect((await create(valid)).body.description).toBeNull();
      expect((await create({ ...valid, description: null })).body.description).toBeNull();
      const long = await create({ ...valid, description: 'x'.repeat(257) });
      expect(long.status).toBe(400);
      expect(long.body.details).toEqual([
        expect.objectContaining({ field: 'description', rule: 'max_length' }),
      ]);
      expect((await create({ ...valid, description: 'x'.repeat(256) })).status).toBe(201);
    });

    it('counts the 256 characters of a description in code points, on create and update alike', async () => {
      // A variation selector is a character of its own: 'a\uFE0F' is two, whatever a font makes of it.
      const full = 'a\uFE0F'.repeat(128);
      expect((await create({ ...valid, description: '\u{1F511}'.repeat(256) })).status).toBe(201);
      const created = await create({ ...valid, description: full });
      expect(created.status).toBe(201);
      expect(created.body.description).toBe(full);
      const refused = await create({ ...valid, description: `${full}x` });
      expect(refused.status).toBe(400);
      expect(refused.body.details).toEqual([
        expect.objectContaining({ field: 'description', rule: 'max_length' }),
      ]);
      const patched = await api.http.patch(`/v1/webhooks/${created.body.id}`, {
        key,
        body: { description: `x${full}` },
      });
      expect(patched.status).toBe(400);
      expect(patched.body.details).toEqual([
        expect.objectContaining({ field: 'description', rule: 'max_length' }),
      ]);
    });

    it.each([
      ['missing url', { subscribed_events: ['task.completed'] }, 'url', 'required'],
      ['url of wrong type', { url: 42, subscribed_events: ['task.completed'] }, 'url', 'type'],
      [
        'non-https url',
        { url: 'http://hooks.example.com/', subscribed_events: ['task.completed'] },
        'url',
        'scheme',
      ],
      [
        'loopback literal',
        { url: 'https://127.0.0.1/', subscribed_events: ['task.completed'] },
        'url',
        'private_address',
      ],
      [
        'credentials',
        { url: 'https://user:pw@hooks.example.com/', subscribed_events: ['task.completed'] },
        'url',
        'credentials',
      ],
      [
        'localhost',
        { url: 'https://localhost/', subscribed_events: ['task.completed'] },
        'url',
        'internal_name',
      ],
      [
        '.internal name',
        { url: 'https://api.internal/', subscribed_events: ['task.completed'] },
        'url',
        'internal_name',
      ],
      [
        'metadata address',
        { url: 'https://169.254.169.254/latest', subscribed_events: ['task.completed'] },
        'url',
        'private_address',
      ],
      ['missing events', { url: 'https://hooks.example.com/' }, 'subscribed_events', 'required'],
      [
        'empty events',
        { url: 'https://hooks.example.com/', subscribed_events: [] },
        'subscribed_events',
        'min_items',
      ],
      [
        'unknown event',
        { url: 'https://hooks.example.com/', subscribed_events: ['task.exploded'] },
        'subscribed_events',
        'event_catalog',
      ],
      [
        'events not an array',
        { url: 'https://hooks.example.com/', subscribed_events: 'task.completed' },
        'subscribed_events',
        'type',
      ],
      ['unknown field', { ...valid, enabeld: true }, 'enabeld', 'unknown_field'],
      ['description of wrong type', { ...valid, description: 5 }, 'description', 'type'],
    ])('refuses %s with 400 validation_failed naming the rule', async (_name, body, field, rule) => {
      const res = await create(body);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect(typeof res.body.error).toBe('string');
      expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
      expect(res.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field, rule })]));
    });

    it('lists the allowed event types for an unknown one', async () => {
      const res = await create({ url: valid.url, subscribed_events: ['nope'] });
      expect(res.body.details[0].message).toContain('task.completed');
      expect(res.body.details[0].message).toContain('identity.authentication_failed');
    });

    it('names the unknown field in the error sentence', async () => {
      const res = await create({ ...valid, secret: 'mine' });
      expect(res.status).toBe(400);
      expect(res.body.error).toContain('secret');
    });

    it.each([
      ['not JSON', 'garbage', 'application/json'],
      ['truncated JSON', '{"url": "https://a.example.com/"', 'application/json'],
      ['form body', 'url=https://a.example.com/', 'application/x-www-form-urlencoded'],
      ['plain text', 'hello', 'text/plain'],
    ])('answers a body that is %s with 400 invalid_json', async (_name, raw, type) => {
      const res = await api.http.post('/v1/webhooks', { key, raw, headers: { 'content-type': type } });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('invalid_json');
    });

    it.each([['[]'], ['"a string"'], ['42'], ['null'], ['true']])(
      'refuses a JSON body that is not an object (%s)',
      async (raw) => {
        const res = await api.http.post('/v1/webhooks', {
          key,
          raw,
          headers: { 'content-type': 'application/json' },
        });
        expect(res.status).toBe(400);
        expect(res.body.code).toBe('validation_failed');
      },
    );

    it('refuses a body over 64 KiB with 413 payload_too_large', async () => {
      const res = await create({ ...valid, description: 'x'.repeat(70 * 1024) });
      expect(res.status).toBe(413);
      expect(res.body.code).toBe('payload_too_large');
    });

    it('never answers 500 to garbage of any type', async () => {
      const bodies: unknown[] = [
        { url: null, subscribed_events: null },
        { url: ['https://a.example.com'], subscribed_events: [{}] },
        { url: { toString: 'x' }, subscribed_events: [1, 2] },
        { url: 'https://' + 'a'.repeat(3000) + '.com', subscribed_events: ['task.completed'] },
        { url: 'https://a.example.com', subscribed_events: ['task.completed'], description: { a: 1 } },
        { url: 'https://a.example.com', subscribed_events: new Array(500).fill('task.unknown') },
      ];
      for (const body of bodies) {
        const res = await create(body);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
      }
      const proto = await api.http.post('/v1/webhooks', {
        key,
        raw: '{"__proto__":{"x":1},"url":"https://a.example.com","subscribed_events":["task.completed"]}',
        headers: { 'content-type': 'application/json' },
      });
      expect(proto.status).toBe(400);
    });

    it('names unknown fields that every object inherits, and prototype-poisoning keys, instead of dropping them', async () => {
      for (const field of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__']) {
        const res = await create({ ...valid, [field]: 1 });
        expect({ field, status: res.status, code: res.body.code }).toEqual({
          field,
          status: 400,
          code: 'validation_failed',
        });
        expect(res.body.details).toContainEqual(expect.objectContaining({ field, rule: 'unknown_field' }));
      }
      for (const [raw, field] of [
        [
          '{"__proto__":{"enabled":false},"url":"https://a.example.com","subscribed_events":["task.completed"]}',
          '__proto__',
        ],
        [
          '{"constructor":{"prototype":{}},"url":"https://a.example.com","subscribed_events":["task.completed"]}',
          'constructor',
        ],
      ]) {
        const res = await api.http.post('/v1/webhooks', {
          key,
          raw,
          headers: { 'content-type': 'application/json' },
        });
        expect({ status: res.status, code: res.body.code }).toEqual({
          status: 400,
          code: 'validation_failed',
        });
        expect(res.body.details).toEqual([
          { field, rule: 'unknown_field', message: `unknown field "${field}"` },
        ]);
      }
      // The same on the other routes with a body, and in query strings.
      const id = (await create(valid)).body.id as string;
      for (const res of [
        await api.http.patch(`/v1/webhooks/${id}`, { key, body: { toString: 'x' } }),
        await api.http.post(`/v1/webhooks/${id}/rotate-secret`, { key, body: { valueOf: 1 } }),
        await api.http.get(`/v1/webhooks/${id}/events?constructor=1`, { key }),
      ]) {
        expect({ status: res.status, code: res.body.code }).toEqual({
          status: 400,
          code: 'validation_failed',
        });
        expect(res.body.details[0].rule).toBe('unknown_field');
      }
      expect((await api.http.get('/v1/webhooks', { key })).body.webhooks).toHaveLength(1);
    });

    it('names a field called prototype like any unknown field, in bodies and query strings, instead of dropping it', async () => {
      const id = (await create(valid)).body.id as string;
      const refusals = [
        await create({ ...valid, prototype: 1 }),
        await create({ ...valid, prototype: { enabled: false } }),
        await api.http.patch(`/v1/webhooks/${id}`, { key, body: { prototype: 'x' } }),
        await api.http.post(`/v1/webhooks/${id}/rotate-secret`, { key, body: { prototype: 1 } }),
        await api.http.post(`/v1/webhooks/${id}/rotate-secret`, {
          key,
          body: { grace_period_hours: 1, prototype: null },
        }),
        await api.http.get('/v1/audit-events?prototype=1', { key }),
        await api.http.get(`/v1/webhooks/${id}/events?prototype=1`, { key }),
      ];
      for (const res of refusals) {
        expect({ status: res.status, body: res.body }).toEqual({
          status: 400,
          body: {
            error: 'unknown field "prototype"',
            code: 'validation_failed',
            details: [{ field: 'prototype', rule: 'unknown_field', message: 'unknown field "prototype"' }],
            request_id: expect.any(String),
          },
        });
      }
      // Refused before anything happened: one webhook, never rotated.
      const listed = await api.http.get('/v1/webhooks', { key });
      expect(listed.body.webhooks.map((w: { id: string }) => w.id)).toEqual([id]);
      const rotations = await api.http.get(`/v1/audit-events?webhook_id=${id}&type=webhook.secret.rotated`, {
        key,
      });
      expect(rotations.body.events).toEqual([]);
    });

    it('refuses fields on the routes that take no body, by name, before anything happens', async () => {
      const id = (await create(valid)).body.id as string;
      const routes: [string, string][] = [
        ['DELETE', `/v1/webhooks/${id}`],
        ['POST', `/v1/webhooks/${id}/secret/claim`],
        ['DELETE', `/v1/webhooks/${id}/previous-secrets`],
        ['DELETE', `/v1/webhooks/${id}/rotation-policy`],
        ['DELETE', '/v1/rotation-policy'],
      ];
      for (const [method, path] of routes) {
        const typo = await api.http.request(method, path, { key, body: { grace_period_hour: 0, x: 1 } });
        expect({ path, status: typo.status, details: typo.body.details }).toEqual({
          path,
          status: 400,
          details: [
            {
              field: 'grace_period_hour',
              rule: 'unknown_field',
              message: 'unknown field "grace_period_hour"',
            },
            { field: 'x', rule: 'unknown_field', message: 'unknown field "x"' },
          ],
        });
        const notObject = await api.http.request(method, path, { key, body: [1] });
        expect({ path, status: notObject.status, rule: notObject.body.details?.[0]?.rule }).toEqual({
          path,
          status: 400,
          rule: 'type',
        });
        // Still authentication first.
        expect((await api.http.request(method, path, { body: { x: 1 } })).status).toBe(401);
      }
      expect((await api.http.get(`/v1/webhooks/${id}`, { key })).status).toBe(200);
      // An empty object or no body at all is no field.
      expect((await api.http.delete(`/v1/webhooks/${id}/previous-secrets`, { key, body: {} })).status).toBe(
        200,
      );
      expect((await api.http.delete(`/v1/webhooks/${id}`, { key, body: {} })).status).toBe(200);
    });

    it('enforces the per-project limit atomically under 20 parallel creates', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          create({ url: `https://hooks.example.com/${i}`, subscribed_events: ['task.completed'] }),
        ),
      );
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(5);
      expect(statuses.filter((s) => s === 409)).toHaveLength(15);
      expect(results.find((r) => r.status === 409)!.body.code).toBe('webhook_limit_reached');
      expect((await api.http.get('/v1/webhooks', { key })).body.webhooks).toHaveLength(5);
    });

    it('frees a slot when a webhook is deleted', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await create(valid)).body.id);
      expect((await create(valid)).status).toBe(409);
      await api.http.delete(`/v1/webhooks/${ids[0]}`, { key });
      expect((await create(valid)).status).toBe(201);
    });
  });

  describe('GET /v1/webhooks and /v1/webhooks/{id}', () => {
    it('lists live webhooks oldest first, with exactly the public fields', async () => {
      const a = (await create({ ...valid, description: 'a' })).body;
      const b = (await create({ ...valid, description: 'b' })).body;
      const c = (await create({ ...valid, description: 'c' })).body;
      await api.http.delete(`/v1/webhooks/${b.id}`, { key });
      const res = await api.http.get('/v1/webhooks', { key });
      expect(res.status).toBe(200);
      expect(res.body.webhooks.map((w: { id: string }) => w.id)).toEqual([a.id, c.id]);
      for (const w of res.body.webhooks) expect(Object.keys(w).sort()).toEqual(PUBLIC_FIELDS);
    });

    it('gets one webhook', async () => {
      const created = (await create(valid)).body;
      const res = await api.http.get(`/v1/webhooks/${created.id}`, { key });
      expect(res.status).toBe(200);
      const { secret: _secret, ...pub } = created;
      expect(res.body).toEqual(pub);
    });

    it('answers an unknown id with 404 webhook_not_found', async () => {
      for (const id of ['wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P', 'nope', 'x'.repeat(500)]) {
        const res = await api.http.get(`/v1/webhooks/${id}`, { key });
        expect(res.status).toBe(404);
        expect(res.body.code).toBe('webhook_not_found');
      }
    });
  });

  describe('tenant isolation', () => {
    it("answers another project's webhook exactly like a missing one, on every route", async () => {
      const mine = (await create(valid)).body;
      const other = await api.newKey();
      const missing = 'wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P';
      const calls = (id: string) => [
        api.http.get(`/v1/webhooks/${id}`, { key: other.key }),
        api.http.patch(`/v1/webhooks/${id}`, { key: other.key, body: { description: 'pwned' } }),
        api.http.post(`/v1/webhooks/${id}/rotate-secret`, { key: other.key }),
        api.http.delete(`/v1/webhooks/${id}`, { key: other.key }),
      ];
      const theirs = await Promise.all(calls(mine.id));
      const none = await Promise.all(calls(missing));
      for (let i = 0; i < theirs.length; i++) {
        expect(theirs[i].status).toBe(404);
        expect(theirs[i].body.code).toBe(none[i].body.code);
        expect(theirs[i].body.error).toBe(none[i].body.error);
      }
      expect((await api.http.get('/v1/webhooks', { key: other.key })).body.webhooks).toEqual([]);
      const still = await api.http.get(`/v1/webhooks/${mine.id}`, { key });
      expect(still.body.description).toBeNull();
    });

    it('a second key of the same project sees the same webhooks', async () => {
      const mine = (await create(valid)).body;
      const second = await api.newKey(projectId);
      expect((await api.http.get(`/v1/webhooks/${mine.id}`, { key: second.key })).status).toBe(200);
    });
  });

  describe('PATCH /v1/webhooks/{id}', () => {
    it('returns the webhook unchanged for {} and does not bump updated_at', async () => {
      const created = (await create(valid)).body;
      const res = await api.http.patch(`/v1/webhooks/${created.id}`, { key, body: {} });
      expect(res.status).toBe(200);
      expect(res.body.updated_at).toBe(created.updated_at);
    });

    it('changes each field and bumps updated_at', async () => {
      const created = (await create({ ...valid, description: 'old' })).body;
      // A second later: the change is dated by the clock itself, not only moved on by a millisecond.
      clock.advance(1000);
      const res = await api.http.patch(`/v1/webhooks/${created.id}`, {
        key,
        body: {
          url: 'https://new.example.org/h',
          description: null,
          subscribed_events: ['batch.failed', 'batch.failed'],
          enabled: false,
        },
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        url: 'https://new.example.org/h',
        description: null,
        subscribed_events: ['batch.failed'],
        enabled: false,
      });
      expect(res.body.updated_at).toBe(clock.now().toISOString());
      expect((await api.http.get(`/v1/webhooks/${created.id}`, { key })).body).toEqual(res.body);
    });

    it('a patch that sets the current values changes nothing', async () => {
      const created = (await create(valid)).body;
      const res = await api.http.patch(`/v1/webhooks/${created.id}`, {
        key,
        body: { url: valid.url, enabled: true },
      });
      expect(res.body.updated_at).toBe(created.updated_at);
    });

    it.each([
      [{ url: null }, 'url', 'type'],
      [{ url: 'https://10.0.0.1/' }, 'url', 'private_address'],
      [{ enabled: 'yes' }, 'enabled', 'type'],
      [{ enabled: null }, 'enabled', 'type'],
      [{ subscribed_events: [] }, 'subscribed_events', 'min_items'],
      [{ subscribed_events: null }, 'subscribed_events', 'type'],
      [{ secret: 'x' }, 'secret', 'unknown_field'],
    ])('refuses %j', async (body, field, rule) => {
      const created = (await create(valid)).body;
      const res = await api.http.patch(`/v1/webhooks/${created.id}`, { key, body });
      expect(res.status).toBe(400);
      expect(res.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field, rule })]));
    });

    it('answers 404 for an unknown webhook', async () => {
      const res = await api.http.patch('/v1/webhooks/wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P', {
        key,
        body: { enabled: false },
      });
      expect(res.status).toBe(404);
    });
  });

  describe('DELETE /v1/webhooks/{id}', () => {
    it('soft-deletes: gone from every route, a second delete is 404, secrets destroyed at once', async () => {
      const created = (await create(valid)).body;
      await api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, { key });
      const res = await api.http.delete(`/v1/webhooks/${created.id}`, { key });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ok: true });
      expect((await api.http.get(`/v1/webhooks/${created.id}`, { key })).status).toBe(404);
      expect((await api.http.patch(`/v1/webhooks/${created.id}`, { key, body: {} })).status).toBe(404);
      expect((await api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, { key })).status).toBe(404);
      expect((await api.http.delete(`/v1/webhooks/${created.id}`, { key })).status).toBe(404);
      const secrets = await api.db.dataSource.query(
        'SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1',
        [created.id],
      );
      expect(secrets[0].n).toBe(0);
      const row = await api.db.dataSource.query('SELECT deleted_at FROM webhooks WHERE id = $1', [
        created.id,
      ]);
      expect(row[0].deleted_at).not.toBeNull();
    });
  });

  describe('POST /v1/webhooks/{id}/rotate-secret', () => {
    it('takes a JSON null body as no body (a client serializing an absent body as null), and [] or true as no object', async () => {
      const created = (await create(valid)).body;
      const json = { 'content-type': 'application/json' };
      const rotated = await api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, {
        key,
        headers: json,
        raw: 'null',
      });
      expect(rotated.status).toBe(200);
      expect(rotated.body.secret).toMatch(/^[0-9a-f]{64}$/);
      expect(rotated.body.secret).not.toBe(created.secret);
      for (const raw of ['[]', 'true']) {
        const res = await api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, {
          key,
          headers: json,
          raw,
        });
        expect({ status: res.status, details: res.body.details }).toEqual({
          status: 400,
          details: [expect.objectContaining({ field: 'body', rule: 'type' })],
        });
      }
    });

    it('refuses a query string instead of ignoring it: nothing rotates, nothing changes', async () => {
      const created = (await create(valid)).body;
      const rotate = await api.http.post(`/v1/webhooks/${created.id}/rotate-secret?grace_period_hours=1`, {
        key,
      });
      expect(rotate.status).toBe(400);
      expect(rotate.body).toMatchObject({
        code: 'validation_failed',
        details: [{ field: 'grace_period_hours', rule: 'unknown_field' }],
      });
      expect(rotate.body.error).toMatch(/unknown query parameter "grace_period_hours"/);
      const patch = await api.http.patch(`/v1/webhooks/${created.id}?enabled=false&x=1`, {
        key,
        body: { description: 'changed' },
      });
      expect(patch.status).toBe(400);
      expect(patch.body.details.map((d: { field: string }) => d.field)).toEqual(['enabled', 'x']);
      const many = Array.from({ length: 25 }, (_, i) => `p${i}=1`).join('&');
      const refused = await api.http.post(`/v1/webhooks?${many}`, { key, body: valid });
      expect(refused.status).toBe(400);
      expect(refused.body.details).toHaveLength(20);
      expect((await api.http.delete(`/v1/webhooks/${created.id}?force=true`, { key })).status).toBe(400);
      // Nothing happened: one secret, the first description, still enabled; reads ignore what they do not know.
      const after = await api.http.get(`/v1/webhooks/${created.id}?expand=secret`, { key });
      expect(after.status).toBe(200);
      expect(after.body).toMatchObject({ description: created.description, enabled: true });
      const secrets = await api.db.dataSource.query(
        'SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1',
        [created.id],
      );
      expect(secrets[0].n).toBe(1);
      expect((await api.http.get('/v1/webhooks?limit=1', { key })).body.webhooks).toHaveLength(1);
      // The key is checked first.
      expect((await api.http.post(`/v1/webhooks/${created.id}/rotate-secret?x=1`)).status).toBe(401);
    });

    it('issues a new secret, keeps the previous one for the grace period, bumps updated_at', async () => {
      const created = (await create(valid)).body;
      clock.advance(1000);
      const res = await api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, { key });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual([...PUBLIC_FIELDS, 'secret'].sort());
      expect(res.body.secret).toMatch(/^[0-9a-f]{64}$/);
      expect(res.body.secret).not.toBe(created.secret);
      expect(res.body.updated_at).toBe(clock.now().toISOString());
      const rows: { state: string; expires_at: Date | null; created_at: Date }[] =
        await api.db.dataSource.query(
          'SELECT state, expires_at, created_at FROM webhook_secrets WHERE webhook_id = $1 ORDER BY created_at',
          [created.id],
        );
      expect(rows.map((r) => r.state)).toEqual(['previous', 'current']);
      const graceMs = rows[0].expires_at!.getTime() - rows[1].created_at.getTime();
      expect(graceMs).toBe(24 * 3600 * 1000);
    });

    it('accepts an empty body with a JSON content type, and a grace period override', async () => {
      const created = (await create(valid)).body;
      const empty = await api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, {
        key,
        raw: '',
        headers: { 'content-type': 'application/json' },
      });
      expect(empty.status).toBe(200);
      const custom = await api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, {
        key,
        body: { grace_period_hours: 2 },
      });
      expect(custom.status).toBe(200);
      const rows: { expires_at: Date }[] = await api.db.dataSource.query(
        "SELECT expires_at FROM webhook_secrets WHERE webhook_id = $1 AND state = 'previous' ORDER BY created_at DESC LIMIT 1",
        [created.id],
      );
      const lastPrevious = rows[0].expires_at.getTime();
      expect(lastPrevious).toBe(clock.now().getTime() + 2 * 3600_000);
      const zero = await api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, {
        key,
        body: { grace_period_hours: 0 },
      });
      expect(zero.status).toBe(200);
    });

    it.each([
      [{ grace_period_hours: 169 }],
      [{ grace_period_hours: -1 }],
      [{ grace_period_hours: 1.5 }],
      [{ grace_period_hours: '2' }],
      [{ other: 1 }],
    ])('refuses %j', async (body) => {
      const created = (await create(valid)).body;
      const res = await api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, { key, body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('validation_failed');
    });

    it('serialises 20 parallel rotations: 20 distinct secrets, exactly one current, each audited once', async () => {
      const created = (await create(valid)).body;
      const results = await Promise.all(
        Array.from({ length: 20 }, () => api.http.post(`/v1/webhooks/${created.id}/rotate-secret`, { key })),
      );
      expect(results.map((r) => r.status)).toEqual(new Array(20).fill(200));
      const secrets = new Set(results.map((r) => r.body.secret));
      expect(secrets.size).toBe(20);
      const current = await api.db.dataSource.query(
        "SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1 AND state = 'current'",
        [created.id],
      );
      expect(current[0].n).toBe(1);
      const audits: { event: { data: Record<string, unknown> } }[] = await api.db.dataSource.query(
        "SELECT event FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.rotated' ORDER BY seq",
        [created.id],
      );
      expect(audits).toHaveLength(20);
      // In lock order (the events are inserted under the lock), each rotation retired the secret the one
      // before it returned: every rotation read the current secret as of after the lock, never before it.
      const returned = new Set(results.map((r) => fingerprint(r.body.secret)));
      let before = fingerprint(created.secret);
      for (const { data } of audits.map((a) => a.event)) {
        expect(returned.has(data.fingerprint as string)).toBe(true);
        expect(data.previous_fingerprint).toBe(before);
        expect(data.previous_expires_at).toMatch(ISO_MS);
        expect(data).not.toHaveProperty('superseded_unclaimed_fingerprint');
        before = data.fingerprint as string;
      }
      expect(new Set(audits.map((a) => a.event.data.fingerprint)).size).toBe(20);
      const previous = await api.db.dataSource.query(
        "SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1 AND state = 'previous'",
        [created.id],
      );
      // A webhook keeps ten previous secrets: the rotations past the tenth destroyed the oldest, in chain order.
      expect(previous[0].n).toBe(10);
      const expired: { event: { data: { fingerprint: string } } }[] = await api.db.dataSource.query(
        "SELECT event FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.previous_expired' ORDER BY seq",
        [created.id],
      );
      expect(expired.map((e) => e.event.data.fingerprint)).toEqual(
        audits.slice(0, 10).map((a) => a.event.data.previous_fingerprint),
      );

      // Dated once the lock is held: times never go backwards along the webhook's changes, so its updated_at is
      // the latest any rotation returned, and the history read newest first is the lock order.
      const latest = results
        .map((r) => r.body.updated_at as string)
        .sort()
        .pop();
      expect((await api.http.get(`/v1/webhooks/${created.id}`, { key })).body.updated_at).toBe(latest);
      const inSeq = (
        await api.db.dataSource.query(
          "SELECT occurred_at FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.rotated' ORDER BY seq",
          [created.id],
        )
      ).map((r: { occurred_at: Date }) => r.occurred_at.getTime());
      expect(inSeq).toEqual([...inSeq].sort((a, b) => a - b));
      const listed = await api.http.get(
        `/v1/audit-events?webhook_id=${created.id}&type=webhook.secret.rotated&limit=200`,
        { key },
      );
      const newestFirst = listed.body.events.map((e: { data: Record<string, string> }) => e.data);
      expect(newestFirst).toHaveLength(20);
      for (let i = 0; i + 1 < newestFirst.length; i++)
        expect(newestFirst[i].previous_fingerprint).toBe(newestFirst[i + 1].fingerprint);
    });
  });

  describe('parallel updates', () => {
    it('list the audit history newest first in the order the updates took effect', async () => {
      const created = (await create(valid)).body;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          api.http.patch(`/v1/webhooks/${created.id}`, { key, body: { description: `d-${i}` } }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(new Array(20).fill(200));
      const final = (await api.http.get(`/v1/webhooks/${created.id}`, { key })).body;
      expect(final.updated_at).toBe(
        results
          .map((r) => r.body.updated_at as string)
          .sort()
          .pop(),
      );
      const listed = await api.http.get(
        `/v1/audit-events?webhook_id=${created.id}&type=webhook.updated&limit=200`,
        { key },
      );
      const changes = listed.body.events.map(
        (e: { data: { changes: { to: string; from: string }[] } }) => e.data.changes[0],
      );
      // One event per update, chained from the first (whose value before was none) to the final one.
      expect(changes).toHaveLength(20);
      expect(changes[0].to).toBe(final.description);
      for (let i = 0; i + 1 < changes.length; i++) expect(changes[i].from).toBe(changes[i + 1].to);
      expect(changes[19].from).toBeNull();
    });

    it('dates a policy change that waited for the webhook lock after the changes that committed meanwhile', async () => {
      const waiting = (await create(valid)).body;
      const other = (await create(valid)).body;
      // Another session holds the first webhook's row: its policy change waits, while a change to the second
      // webhook commits.
      const holder = new Client({ connectionString: TEST_DATABASE_URL });
      await holder.connect();
      let policy: Promise<{ status: number }> | undefined;
      let meanwhile: { body: { updated_at: string } };
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT 1 FROM webhooks WHERE id = $1 FOR UPDATE', [waiting.id]);
        policy = api.http.put(`/v1/webhooks/${waiting.id}/rotation-policy`, {
          key,
          body: { interval_days: 7 },
        });
        await eventually(async () => {
          const [row] = await api.db.dataSource.query<{ n: number }[]>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          return row.n === 1;
        });
        meanwhile = await api.http.patch(`/v1/webhooks/${other.id}`, {
          key,
          body: { description: 'meanwhile' },
        });
      } finally {
        await holder.query('COMMIT');
        await holder.end();
      }
      expect((await policy).status).toBe(200);
      // Newest first: the policy change took effect last, and its time says so (a poller reading `since` the
      // update's time finds it).
      const history = await api.http.get('/v1/audit-events?limit=2', { key });
      const [newest, before] = history.body.events as { type: string; occurred_at: string }[];
      expect([newest.type, before.type]).toEqual(['webhook.rotation_policy.set', 'webhook.updated']);
      expect(newest.occurred_at >= meanwhile.body.updated_at).toBe(true);
    });
  });

  describe('authentication and conventions', () => {
    it('answers 401 unauthorized without a key, with an unknown key, and with a revoked key', async () => {
      for (const headers of [
        {},
        { 'anchor-api-key': 'ak_nope' },
        { 'anchor-api-key': 'x'.repeat(5000) },
      ] as Record<string, string>[]) {
        const res = await api.http.get('/v1/webhooks', { headers });
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('unauthorized');
      }
      const k = await api.newKey();
      expect((await api.http.get('/v1/webhooks', { key: k.key })).status).toBe(200);
      await api.app
        .get((await import('@app/domain')).ApiKeysService)
        .revoke(k.apiKeyId, { type: 'admin', id: 'test' });
      expect((await api.http.get('/v1/webhooks', { key: k.key })).status).toBe(401);
    });

    it('checks the key before the body, and before the path is known', async () => {
      const res = await api.http.post('/v1/webhooks', {
        raw: 'garbage',
        headers: { 'content-type': 'application/json' },
      });
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'unauthorized' });
      expect(res.headers.get('x-request-id')).toBe(res.body.request_id);
      const res2 = await api.http.post('/v1/webhooks', { body: valid });
      expect(res2.status).toBe(401);
      const notJson = await api.http.patch('/v1/webhooks/wh_x', { raw: '{', key: 'ak_nope' });
      expect(notJson.status).toBe(401);
      // With a key, the same garbage is what it is.
      expect((await api.http.post('/v1/webhooks', { raw: 'garbage', key })).body.code).toBe('invalid_json');
      // An unknown /v1 path: 401 without a key, 404 with one. Outside /v1 no key is needed.
      expect((await api.http.get('/v1/nowhere')).status).toBe(401);
      // However the path is spelled: the router decodes it, so does the check.
      for (const spelled of ['/%761/webhooks', '/v%31/webhooks', '/%76%31/webhooks/wh_x']) {
        const encoded = await api.http.post(spelled, {
          raw: '{',
          headers: { 'content-type': 'application/json' },
        });
        expect({ spelled, status: encoded.status }).toEqual({ spelled, status: 401 });
      }
      expect((await api.http.get('/v1/nowhere?x=1', { key })).status).toBe(404);
      expect((await api.http.get('/health/live')).status).toBe(200);
    });

    it('echoes a sane x-request-id and replaces an insane one', async () => {
      const echoed = await api.http.get('/v1/webhooks', { key, headers: { 'x-request-id': 'req-123' } });
      expect(echoed.headers.get('x-request-id')).toBe('req-123');
      const long = await api.http.get('/v1/webhooks', { key, headers: { 'x-request-id': 'x'.repeat(500) } });
      // Replaced by a new id (a UUID), not cut to length: the header and the error body agree on it.
      expect(long.headers.get('x-request-id')).toMatch(UUID);
      const longErr = await api.http.get('/v1/webhooks/nope', {
        key,
        headers: { 'x-request-id': 'x'.repeat(129) },
      });
      expect(longErr.headers.get('x-request-id')).toMatch(UUID);
      expect(longErr.body.request_id).toBe(longErr.headers.get('x-request-id'));
      const exactly128 = await api.http.get('/v1/webhooks', {
        key,
        headers: { 'x-request-id': 'y'.repeat(128) },
      });
      expect(exactly128.headers.get('x-request-id')).toBe('y'.repeat(128));
      const err = await api.http.get('/v1/webhooks/nope', { key, headers: { 'x-request-id': 'req-err' } });
      expect(err.body.request_id).toBe('req-err');
      // Any value of sane length, spaces included.
      const spaced = await api.http.get('/v1/webhooks/nope', {
        key,
        headers: { 'x-request-id': 'trace 42' },
      });
      expect(spaced.headers.get('x-request-id')).toBe('trace 42');
      expect(spaced.body.request_id).toBe('trace 42');
      // Sent twice (a proxy adding its own after the caller's): the first, not the two run together; a comma
      // inside one id stays.
      const twice = await rawExchange(api.http.baseUrl, [
        `GET /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\n` +
          'x-request-id: from-caller\r\nx-request-id: from-proxy\r\nconnection: close\r\n\r\n',
      ]);
      expect(twice.responses[0].headers['x-request-id']).toBe('from-caller');
      const comma = await api.http.get('/v1/webhooks', { key, headers: { 'x-request-id': 'a,b' } });
      expect(comma.headers.get('x-request-id')).toBe('a,b');
    });

    it('carries x-request-id on the routes without a key too: health, metrics, the OpenAPI description', async () => {
      for (const path of ['/health/live', '/health/ready', '/metrics', '/openapi.json', '/docs']) {
        const echoed = await api.http.get(path, { headers: { 'x-request-id': `probe-${path}` } });
        expect({ path, status: echoed.status, id: echoed.headers.get('x-request-id') }).toEqual({
          path,
          status: 200,
          id: `probe-${path}`,
        });
        const fresh = await api.http.get(path);
        expect({ path, id: fresh.headers.get('x-request-id') }).toEqual({
          path,
          id: expect.stringMatching(UUID),
        });
      }
    });

    it('marks every answer nosniff: the routes, their errors, and the answers of the router and the HTTP server', async () => {
      const answers = await Promise.all([
        create(valid),
        api.http.get('/v1/webhooks', { key }),
        api.http.get('/v1/webhooks'),
        api.http.get('/v1/webhooks/nope', { key }),
        api.http.post('/v1/webhooks', { key, body: { url: 'https://10.0.0.1/' } }),
        api.http.get('/v1/webhooks/%zz'),
        api.http.get('/v1/webhooks/%zz', { key }),
        api.http.get('/nothing-here'),
        api.http.get('/health/live'),
        api.http.get('/metrics'),
        api.http.get('/openapi.json'),
        api.http.get('/docs'),
      ]);
      for (const res of answers) expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      const raw = await Promise.all([
        rawExchange(api.http.baseUrl, ['GARBAGE\r\n\r\n']),
        rawExchange(api.http.baseUrl, ['GET /v1/webhooks HTTP/1.1\r\nHost: x\r\nExpect: later\r\n\r\n']),
      ]);
      expect(
        raw.map((r) => [
          r.responses[0].status,
          r.responses[0].headers['x-content-type-options'],
          r.responses[0].headers['cache-control'],
        ]),
      ).toEqual([
        [400, 'nosniff', 'no-store'],
        [417, 'nosniff', 'no-store'],
      ]);
    });

    it("tells caches to keep no answer of /v1: its secrets and its lists are the key holder's alone", async () => {
      const headers = { 'idempotency-key': 'no-store' };
      const created = await api.http.post('/v1/webhooks', { key, body: valid, headers });
      const replayed = await api.http.post('/v1/webhooks', { key, body: valid, headers });
      expect(replayed.headers.get('idempotent-replayed')).toBe('true');
      const id = created.body.id as string;
      const answers = await Promise.all([
        api.http.post(`/v1/webhooks/${id}/rotate-secret`, { key }),
        api.http.post(`/v1/webhooks/${id}/secret/claim`, { key }),
        api.http.get('/v1/webhooks', { key }),
        api.http.get(`/v1/webhooks/${id}`, { key }),
        api.http.get('/v1/audit-events', { key }),
        api.http.get('/v1/webhooks'),
      ]);
      expect([created, replayed, ...answers].map((r) => [r.status, r.headers.get('cache-control')])).toEqual([
        [201, 'no-store'],
        [201, 'no-store'],
        [200, 'no-store'],
        [409, 'no-store'],
        [200, 'no-store'],
        [200, 'no-store'],
        [200, 'no-store'],
        [401, 'no-store'],
      ]);
    });

    it('answers unknown routes with 404 not_found in the error body', async () => {
      const res = await api.http.get('/v1/nothing-here', { key });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('not_found');
      expect(res.body.request_id).toMatch(UUID);
      expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
    });
  });
});
