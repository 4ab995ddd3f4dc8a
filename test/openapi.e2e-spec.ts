import { connect } from 'node:net';
import { startApi, type RunningApi } from './support/api-harness';
import type { RequestOptions, TestResponse } from './support/http-client';
import { responseViolations, schemaViolations } from './support/openapi-schema';
import { parseResponses, rawExchange } from './support/raw-http';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_REDIS_URL } from './support/test-env';

// Every route of ../shared/spec/api.md, both tables (Anchor-compatible and ext), as method + path, with the
// operationId a generated client names its method after.
const SPEC_OPERATIONS: Record<string, string> = {
  'POST /v1/webhooks': 'createWebhook',
  'GET /v1/webhooks': 'listWebhooks',
  'GET /v1/webhooks/{id}': 'getWebhook',
  'PATCH /v1/webhooks/{id}': 'updateWebhook',
  'DELETE /v1/webhooks/{id}': 'deleteWebhook',
  'POST /v1/webhooks/{id}/rotate-secret': 'rotateWebhookSecret',
  'POST /v1/webhooks/{id}/test': 'sendTestEvent',
  'GET /v1/webhooks/{id}/events': 'listDeliveries',
  'PUT /v1/webhooks/{id}/rotation-policy': 'setWebhookRotationPolicy',
  'GET /v1/webhooks/{id}/rotation-policy': 'getWebhookRotationPolicy',
  'DELETE /v1/webhooks/{id}/rotation-policy': 'removeWebhookRotationPolicy',
  'PUT /v1/rotation-policy': 'setProjectRotationPolicy',
  'GET /v1/rotation-policy': 'getProjectRotationPolicy',
  'DELETE /v1/rotation-policy': 'removeProjectRotationPolicy',
  'POST /v1/webhooks/{id}/secret/claim': 'claimSecret',
  'GET /v1/webhooks/{id}/secret-status': 'getSecretStatus',
  'DELETE /v1/webhooks/{id}/previous-secrets': 'revokePreviousSecrets',
  'GET /v1/audit-events': 'listAuditEvents',
};
const SPEC_ROUTES = Object.keys(SPEC_OPERATIONS);

// Path parameters compare by position, whatever their name.
const normalise = (route: string) => route.replace(/\{[^}]+\}/g, '{}');

describe('OpenAPI description', () => {
  let api: RunningApi;
  let doc: any;

  beforeAll(async () => {
    api = await startApi();
    const res = await api.http.get('/openapi.json');
    expect(res.status).toBe(200);
    doc = res.body;
  });
  afterAll(() => api.close());

  const documented = (): Set<string> =>
    new Set(
      Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
        Object.keys(ops).map((method) => normalise(`${method.toUpperCase()} ${path}`)),
      ),
    );

  it.each(SPEC_ROUTES)('documents %s', (route) => {
    expect([...documented()]).toContain(normalise(route));
  });

  const operations = (): [string, any][] =>
    Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]): [string, any] => [
        normalise(`${method.toUpperCase()} ${path}`),
        op,
      ]),
    );

  it('names every operation once, in camelCase (the spec routes as a client would call them)', () => {
    const ids = operations().map(([, op]) => op.operationId);
    for (const id of ids) expect(id).toMatch(/^[a-z][A-Za-z]+$/);
    expect(new Set(ids).size).toBe(ids.length);
    const byRoute = Object.fromEntries(operations().map(([route, op]) => [route, op.operationId]));
    for (const [route, id] of Object.entries(SPEC_OPERATIONS))
      expect([route, byRoute[normalise(route)]]).toEqual([route, id]);
  });

  it('declares the anchor-api-key scheme and requires it on the /v1 routes', () => {
    expect(doc.components.securitySchemes['anchor-api-key']).toEqual({
      type: 'apiKey',
      in: 'header',
      name: 'anchor-api-key',
    });
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      if (!path.startsWith('/v1/')) continue;
      for (const op of Object.values(ops)) {
        expect(op.security).toEqual(expect.arrayContaining([{ 'anchor-api-key': [] }]));
      }
    }
  });

  it('describes the error body on every operation', () => {
    const schema = doc.components.schemas.ErrorResponse;
    expect(schema.required).toEqual(expect.arrayContaining(['error', 'code', 'request_id']));
    expect(schema.properties.code.enum).toContain('rate_limited');
    for (const ops of Object.values(doc.paths as Record<string, Record<string, any>>)) {
      for (const op of Object.values(ops)) {
        expect(op.responses.default.content['application/json'].schema).toEqual({
          $ref: '#/components/schemas/ErrorResponse',
        });
      }
    }
  });

  it('documents the Idempotency-Key header on create, rotate and claim', () => {
    for (const [path, method] of [
      ['/v1/webhooks', 'post'],
      ['/v1/webhooks/{id}/rotate-secret', 'post'],
      ['/v1/webhooks/{id}/secret/claim', 'post'],
    ]) {
      const params = doc.paths[path][method].parameters as { name: string; in: string }[];
      expect(params).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: 'Idempotency-Key', in: 'header' })]),
      );
    }
  });

  it('declares the error statuses of the route tables, with the request id and Retry-After headers', () => {
    const statuses = (method: string, path: string) => Object.keys(doc.paths[path][method].responses);
    expect(statuses('post', '/v1/webhooks')).toEqual(
      expect.arrayContaining(['201', '400', '401', '409', '413', '429', '503']),
    );
    expect(statuses('get', '/v1/webhooks/{id}')).toEqual(expect.arrayContaining(['200', '401', '404']));
    expect(statuses('post', '/v1/webhooks/{id}/secret/claim')).toEqual(
      expect.arrayContaining(['200', '401', '404', '409']),
    );
    expect(statuses('get', '/v1/audit-events')).toEqual(expect.arrayContaining(['200', '400', '401']));
    expect(statuses('get', '/v1/audit-events')).not.toContain('404');
    // The project default policy concerns no webhook: its 404 is only ever `not_found`.
    for (const method of ['get', 'delete']) {
      expect(doc.paths['/v1/rotation-policy'][method].responses['404'].description).not.toMatch(
        /webhook_not_found/,
      );
      expect(doc.paths['/v1/webhooks/{id}/rotation-policy'][method].responses['404'].description).toMatch(
        /webhook_not_found.*not_found/,
      );
    }
    let idempotentOps = 0;
    for (const ops of Object.values(doc.paths as Record<string, Record<string, any>>)) {
      for (const op of Object.values(ops)) {
        for (const response of Object.values(op.responses as Record<string, any>)) {
          expect(response.headers['x-request-id']).toBeDefined();
        }
        for (const status of ['429', '503']) {
          if (op.responses[status]) expect(op.responses[status].headers['retry-after']).toBeDefined();
        }
        const idempotent = (op.parameters ?? []).some(
          (p: { in: string; name: string }) => p.in === 'header' && p.name === 'Idempotency-Key',
        );
        if (idempotent) {
          idempotentOps += 1;
          expect(op.responses['409'].headers['retry-after']).toBeDefined();
        }
      }
    }
    // Create, rotate-secret, secret claim and test take the key.
    expect(idempotentOps).toBe(4);
  });

  it('says what each query parameter of the two logs does, and which instant since and until bound', () => {
    const query = (path: string) =>
      Object.fromEntries(
        (doc.paths[path].get.parameters as { in: string; name: string; description?: string }[])
          .filter((p) => p.in === 'query')
          .map((p) => [p.name, p.description]),
      );
    const events = query('/v1/webhooks/{id}/events');
    const audit = query('/v1/audit-events');
    for (const [name, description] of [...Object.entries(events), ...Object.entries(audit)])
      expect({ name, description }).toEqual({ name, description: expect.stringMatching(/\w/) });
    // api.md: the delivery log filters on the scheduled time, inclusive; audit events on when they occurred.
    expect(events.since).toMatch(/`scheduled_at`.*at or after.*inclusive/);
    expect(events.until).toMatch(/`scheduled_at`.*at or before.*inclusive/);
    expect(audit.since).toMatch(/`occurred_at`.*at or after.*inclusive/);
    expect(audit.until).toMatch(/`occurred_at`.*at or before.*inclusive/);
    expect(audit.cursor).toMatch(/next_cursor/);
  });

  it('describes request bodies as strictly as the server checks them', () => {
    const schemas = doc.components.schemas;
    for (const name of ['CreateWebhookDto', 'UpdateWebhookDto', 'RotateSecretDto', 'SetRotationPolicyDto']) {
      expect({ name, additionalProperties: schemas[name].additionalProperties }).toEqual({
        name,
        additionalProperties: false,
      });
    }
    expect(schemas.CreateWebhookDto.properties.subscribed_events.minItems).toBe(1);
    expect(schemas.CreateWebhookDto.properties.url).toMatchObject({ minLength: 1, maxLength: 2048 });
    expect(schemas.SetRotationPolicyDto.properties.interval_days).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 365,
    });
    // rotate-secret needs no body; create does.
    expect(doc.paths['/v1/webhooks/{id}/rotate-secret'].post.requestBody.required).toBe(false);
    expect(doc.paths['/v1/webhooks'].post.requestBody.required).toBe(true);
  });

  it('serves the UI at /docs', async () => {
    const res = await api.http.get('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.text).toMatch(/swagger/i);
    const browser = await api.http.get('/docs', {
      headers: { accept: 'text/html,application/json;q=0.9,*/*;q=0.8' },
    });
    expect(browser.headers.get('content-type')).toMatch(/text\/html/);
    // It takes an API key: no other site may frame it.
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('content-security-policy')).toBe("frame-ancestors 'none'");
    // The page's scripts and styles are files served from swagger-ui-dist, through @fastify/static.
    const assets = [...res.text.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      const path = new URL(asset, 'http://docs.invalid/docs').pathname;
      const file = await api.http.get(path);
      expect({ path, status: file.status }).toEqual({ path, status: 200 });
      expect(file.text.length).toBeGreaterThan(100);
      expect(file.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it('serves the UI assets whole whatever Range a client sends: no 500, no partial content', async () => {
    const page = await api.http.get('/docs');
    const asset = [...page.text.matchAll(/(?:src|href)="([^"]+\.css)"/g)].map((m) => m[1])[0];
    const path = new URL(asset, 'http://docs.invalid/docs').pathname;
    const whole = await api.http.get(path);
    expect(whole.headers.get('accept-ranges')).toBeNull();
    for (const range of ['bytes=999999999-', 'bytes=5-2', 'bytes=abc', 'bytes=0-9', 'pages=1']) {
      const res = await api.http.get(path, { headers: { range } });
      expect({ range, status: res.status, length: res.text.length }).toEqual({
        range,
        status: 200,
        length: whole.text.length,
      });
      expect(res.headers.get('content-range')).toBeNull();
    }
  });

  it('answers a failed precondition on a UI asset with the error body, never a 500', async () => {
    const page = await api.http.get('/docs');
    const asset = [...page.text.matchAll(/(?:src|href)="([^"]+\.css)"/g)].map((m) => m[1])[0];
    const path = new URL(asset, 'http://docs.invalid/docs').pathname;
    const preconditions: Record<string, string>[] = [
      { 'if-match': '"not-this-one"' },
      { 'if-unmodified-since': 'Mon, 01 Jan 1990 00:00:00 GMT' },
    ];
    for (const headers of preconditions) {
      const res = await api.http.get(path, { headers: { ...headers, 'x-request-id': 'precondition-1' } });
      expect({ headers, status: res.status, body: res.body }).toEqual({
        headers,
        status: 400,
        body: {
          error: 'Precondition Failed',
          code: 'validation_failed',
          details: [{ field: 'request', rule: 'form', message: 'Precondition Failed' }],
          request_id: 'precondition-1',
        },
      });
    }
  });

  it('answers a path that climbs out of /docs as one that does not exist: 404, not a refusal named "Forbidden"', async () => {
    for (const path of [
      '/docs/..',
      '/docs/../package.json',
      '/docs/%2e%2e/package.json',
      '/docs/a/../../x',
    ]) {
      const exchange = await rawExchange(api.http.baseUrl, [
        `GET ${path} HTTP/1.1\r\nHost: x\r\nx-request-id: climb-1\r\nconnection: close\r\n\r\n`,
      ]);
      const [raw] = exchange.responses;
      expect({ path, status: raw.status, body: raw.body }).toEqual({
        path,
        status: 404,
        body: { error: `no route GET ${path}`, code: 'not_found', request_id: 'climb-1' },
      });
    }
  });

  it('serves the JSON document at /docs to a client that asks for JSON', async () => {
    const json = (await api.http.get('/openapi.json')).body;
    for (const accept of ['application/json', 'application/vnd.oai.openapi+json, text/html;q=0']) {
      const res = await api.http.get('/docs', { headers: { accept } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.body).toEqual(json);
      expect(res.headers.get('vary')).toMatch(/accept/i);
    }
    expect((await api.http.get('/docs')).headers.get('vary')).toMatch(/accept/i);
  });

  describe('matches what the service answers', () => {
    it('documents the readiness failure as it is answered: the error body with the report as checks', async () => {
      const redis = await TcpProxy.inFrontOf(TEST_REDIS_URL);
      const other = await startApi({ env: { REDIS_URL: redis.rewrite(TEST_REDIS_URL) } });
      try {
        const live = await other.http.get('/health/live');
        const ready = await other.http.get('/health/ready');
        redis.cut();
        const notReady = await other.http.get('/health/ready');
        expect(notReady.status).toBe(503);
        expect([
          ...responseViolations(doc, 'GET', '/health/live', live),
          ...responseViolations(doc, 'GET', '/health/ready', ready),
          ...responseViolations(doc, 'GET', '/health/ready', notReady),
        ]).toEqual([]);
        expect(
          doc.paths['/health/live'].get.responses['200'].content['application/json'].schema,
        ).toBeDefined();
        const schema = doc.components.schemas.NotReadyResponse;
        expect(schema.required).toEqual(expect.arrayContaining(['error', 'code', 'request_id', 'checks']));
      } finally {
        redis.restore();
        await other.close();
        await redis.stop();
      }
    });

    it('documents the 503 that every route answers while the process stops, readiness included', async () => {
      const other = await startApi();
      const { port } = new URL(other.http.baseUrl);
      const paths = ['/health/ready', '/health/live', '/metrics', '/v1/webhooks'];
      // Connections whose request is under way (its head half sent) are not idle: closing leaves them open.
      const exchanges = await Promise.all(
        paths.map(async (path) => {
          const socket = connect(Number(port), '127.0.0.1');
          await new Promise((resolve) => socket.once('connect', resolve));
          const chunks: Buffer[] = [];
          socket.on('data', (c: Buffer) => chunks.push(c));
          const ended = new Promise<Buffer>((resolve) =>
            socket.once('close', () => resolve(Buffer.concat(chunks))),
          );
          socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
          return { path, socket, ended };
        }),
      );
      // A whole request answered after them: the server has read their halves by then.
      expect((await other.http.get('/health/live')).status).toBe(200);
      const closed = other.close();
      const refused = () =>
        new Promise<boolean>((resolve) => {
          const probe = connect(Number(port), '127.0.0.1');
          probe.on('connect', () => {
            probe.destroy();
            resolve(false);
          });
          probe.on('error', () => resolve(true));
        });
      while (!(await refused())) await new Promise((resolve) => setImmediate(resolve));
      const wrong: string[] = [];
      for (const { socket } of exchanges) socket.write('\r\n');
      for (const { path, ended } of exchanges) {
        const [raw] = parseResponses(await ended).responses;
        expect({ path, status: raw.status, code: raw.body?.code }).toEqual({
          path,
          status: 503,
          code: 'service_unavailable',
        });
        const res = { status: raw.status, headers: new Headers(raw.headers), body: raw.body };
        wrong.push(...responseViolations(doc, 'GET', path, res));
        if (!doc.paths[path].get.responses['503']?.headers['retry-after'])
          wrong.push(`GET ${path} 503: Retry-After not documented`);
      }
      await closed;
      expect(wrong).toEqual([]);
    });

    /** Sends the request and returns what the document gets wrong about the answer. */
    async function violations(
      on: RunningApi,
      method: string,
      template: string,
      path: string,
      opts: RequestOptions = {},
    ): Promise<{ res: TestResponse; wrong: string[] }> {
      const res = await on.http.request(method, path, opts);
      return { res, wrong: responseViolations(doc, method, template, res) };
    }

    it('documents every status, body and header of a full session, errors included', async () => {
      const { key } = await api.newKey();
      const wrong: string[] = [];
      const call = async (method: string, template: string, path: string, opts: RequestOptions = {}) => {
        const seen = await violations(api, method, template, path, { key, ...opts });
        wrong.push(...seen.wrong);
        return seen.res;
      };
      const hooks = { url: 'https://hooks.example.com/a', subscribed_events: ['task.completed'] };
      const created = await call('POST', '/v1/webhooks', '/v1/webhooks', {
        body: { ...hooks, description: 'first' },
        headers: { 'idempotency-key': 'create-1' },
      });
      expect(created.status).toBe(201);
      const replayed = await call('POST', '/v1/webhooks', '/v1/webhooks', {
        body: { ...hooks, description: 'first' },
        headers: { 'idempotency-key': 'create-1' },
      });
      expect(replayed.headers.get('idempotent-replayed')).toBe('true');
      const id = created.body.id as string;
      const one = '/v1/webhooks/{id}';
      const big = JSON.stringify({ description: 'x'.repeat(70_000) });
      const json = { 'content-type': 'application/json' };
      for (const [method, template, path, opts] of [
        ['POST', '/v1/webhooks', '/v1/webhooks', { body: { ...hooks, description: null } }],
        ['POST', '/v1/webhooks', '/v1/webhooks', { body: { ...hooks, extra: 1 } }],
        ['POST', '/v1/webhooks', '/v1/webhooks', { raw: '{not json', headers: json }],
        ['POST', '/v1/webhooks', '/v1/webhooks', { raw: big, headers: json }],
        ['POST', '/v1/webhooks', '/v1/webhooks', { key: 'ak_unknown', body: hooks }],
        ['GET', '/v1/webhooks', '/v1/webhooks', {}],
        ['GET', one, `/v1/webhooks/${id}`, {}],
        ['GET', one, '/v1/webhooks/wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P', {}],
        ['PATCH', one, `/v1/webhooks/${id}`, { body: {} }],
        ['PATCH', one, `/v1/webhooks/${id}`, { body: { description: null, enabled: true } }],
        ['PATCH', one, `/v1/webhooks/${id}`, { body: { url: 'https://127.0.0.1/' } }],
        ['POST', `${one}/rotate-secret`, `/v1/webhooks/${id}/rotate-secret`, {}],
        [
          'POST',
          `${one}/rotate-secret`,
          `/v1/webhooks/${id}/rotate-secret`,
          { body: { grace_period_hours: 2 } },
        ],
        [
          'POST',
          `${one}/rotate-secret`,
          `/v1/webhooks/${id}/rotate-secret`,
          { body: { grace_period_hours: 169 } },
        ],
        ['POST', `${one}/test`, `/v1/webhooks/${id}/test`, { body: { event_type: 'task.failed' } }],
        ['POST', `${one}/test`, `/v1/webhooks/${id}/test`, { body: { event_type: 'task.unknown' } }],
        ['GET', `${one}/events`, `/v1/webhooks/${id}/events?include_payload=true&limit=5`, {}],
        ['GET', `${one}/events`, `/v1/webhooks/${id}/events?limit=0`, {}],
        [
          'PUT',
          `${one}/rotation-policy`,
          `/v1/webhooks/${id}/rotation-policy`,
          { body: { interval_days: 30 } },
        ],
        [
          'PUT',
          `${one}/rotation-policy`,
          `/v1/webhooks/${id}/rotation-policy`,
          { body: { interval_days: 0 } },
        ],
        ['GET', `${one}/rotation-policy`, `/v1/webhooks/${id}/rotation-policy`, {}],
        ['DELETE', `${one}/rotation-policy`, `/v1/webhooks/${id}/rotation-policy`, {}],
        ['GET', `${one}/rotation-policy`, `/v1/webhooks/${id}/rotation-policy`, {}],
        [
          'PUT',
          '/v1/rotation-policy',
          '/v1/rotation-policy',
          { body: { interval_days: 7, grace_period_hours: 0 } },
        ],
        ['GET', '/v1/rotation-policy', '/v1/rotation-policy', {}],
        ['DELETE', '/v1/rotation-policy', '/v1/rotation-policy', {}],
        ['DELETE', '/v1/rotation-policy', '/v1/rotation-policy', {}],
        ['GET', `${one}/secret-status`, `/v1/webhooks/${id}/secret-status`, {}],
        ['POST', `${one}/secret/claim`, `/v1/webhooks/${id}/secret/claim`, {}],
        ['DELETE', `${one}/previous-secrets`, `/v1/webhooks/${id}/previous-secrets`, {}],
        ['DELETE', `${one}/previous-secrets`, `/v1/webhooks/${id}/previous-secrets?x=1`, {}],
        ['GET', '/v1/audit-events', '/v1/audit-events?limit=2', {}],
        ['GET', '/v1/audit-events', '/v1/audit-events?limit=201', {}],
        ['PATCH', one, `/v1/webhooks/${id}`, { body: { enabled: false } }],
        ['POST', `${one}/test`, `/v1/webhooks/${id}/test`, { body: { event_type: 'task.failed' } }],
        ['DELETE', one, `/v1/webhooks/${id}`, {}],
        ['DELETE', one, `/v1/webhooks/${id}`, {}],
      ] as const) {
        await call(method, template, path, opts);
      }
      // The first create's key, replayed once its webhook is deleted: 404, like the webhook itself.
      const replayOfDeleted = await call('POST', '/v1/webhooks', '/v1/webhooks', {
        body: { ...hooks, description: 'first' },
        headers: { 'idempotency-key': 'create-1' },
      });
      expect(replayOfDeleted.body.code).toBe('webhook_not_found');
      for (let i = 0; i < 6; i++) await call('POST', '/v1/webhooks', '/v1/webhooks', { body: hooks });
      // A body over 64 KiB is refused on every route, those that read none included (fetch sends no GET body).
      for (const [template, path] of [
        [one, `/v1/webhooks/${id}`],
        ['/health/live', '/health/live'],
      ]) {
        const exchange = await rawExchange(api.http.baseUrl, [
          `GET ${path} HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\ncontent-type: application/json\r\n` +
            `content-length: ${big.length}\r\nconnection: close\r\n\r\n${big}`,
        ]);
        const [raw] = exchange.responses;
        expect(raw.status).toBe(413);
        const res = { status: raw.status, headers: new Headers(raw.headers), body: JSON.parse(raw.text) };
        wrong.push(...responseViolations(doc, 'GET', template, res));
      }
      expect(wrong).toEqual([]);
    });

    it('refuses, in the request schemas, what the server refuses for its form', async () => {
      const { key } = await api.newKey();
      const create = doc.components.schemas.CreateWebhookDto.properties.url;
      expect(doc.components.schemas.UpdateWebhookDto.properties.url.pattern).toBe(create.pattern);
      const urlPattern = new RegExp(create.pattern);
      const accepted: Record<string, boolean> = {};
      const documented: Record<string, boolean> = {};
      for (const url of [
        'https://hooks.example.com/a',
        'HTTPS://hooks.example.com',
        'https://bücher.example.com/ä?q=ü#f',
        'https://hooks.example.com:8443/x@y',
        'https://hooks.example.com#frag',
        'http://hooks.example.com/',
        'https:hooks.example.com/',
        'https://user@hooks.example.com/',
        'https://@hooks.example.com/',
        'https://hooks.example.com/a b',
        'https://hooks.example.com/a\u00a0b',
        'https://hooks.example.com/a\u0085b',
        'https://hooks.example.com\\a',
        // The host: labels none of which is empty (one trailing dot allowed), a bracketed IPv6 literal, and none
        // of the characters a host may not hold; the port: 1 to 65535.
        'https://hooks..example.com/',
        'https://.hooks.example.com/',
        'https://hooks.example.com./',
        'https://[2001:4860:4860::8888]:8443/',
        'https://2001:4860::8888/',
        'https://a|b.example.com/',
        'https://a%41b.example.com/',
        'https://a~b.example.com/',
        'https://hooks.example.com:/',
        'https://hooks.example.com:0/',
        'https://hooks.example.com:0443/',
        'https://hooks.example.com:65535/',
        'https://hooks.example.com:65536/',
        'https://hooks.example.com:443:1/',
      ]) {
        const res = await api.http.post('/v1/webhooks', {
          key,
          body: { url, subscribed_events: ['task.failed'] },
        });
        accepted[url] = res.status === 201;
        documented[url] = urlPattern.test(url);
        if (res.status === 201) await api.http.delete(`/v1/webhooks/${res.body.id}`, { key });
      }
      expect(documented).toEqual(accepted);

      const header = doc.paths['/v1/webhooks/{id}/rotate-secret'].post.parameters.find(
        (p: { name: string }) => p.name === 'Idempotency-Key',
      ).schema;
      const { body: webhook } = await api.http.post('/v1/webhooks', {
        key,
        body: { url: 'https://hooks.example.com/k', subscribed_events: ['task.failed'] },
      });
      const keyAccepted: Record<string, boolean> = {};
      const keyDocumented: Record<string, boolean> = {};
      for (const idempotencyKey of ['k'.repeat(255), 'k'.repeat(256), 'with space', 'tab\tkey', 'é']) {
        const res = await api.http.post(`/v1/webhooks/${webhook.id}/rotate-secret`, {
          key,
          headers: { 'idempotency-key': Buffer.from(idempotencyKey, 'utf8').toString('latin1') },
        });
        keyAccepted[idempotencyKey] = res.status === 200;
        keyDocumented[idempotencyKey] =
          new RegExp(header.pattern).test(idempotencyKey) &&
          idempotencyKey.length >= header.minLength &&
          idempotencyKey.length <= header.maxLength;
      }
      expect(keyDocumented).toEqual(keyAccepted);

      const audit = doc.paths['/v1/audit-events'].get.parameters;
      const maxLength = (name: string) =>
        audit.find((p: { name: string }) => p.name === name).schema.maxLength;
      expect(maxLength('cursor')).toBe(512);
      expect(maxLength('webhook_id')).toBe(64);
      for (const length of [64, 65]) {
        const res = await api.http.get(`/v1/audit-events?webhook_id=${'w'.repeat(length)}`, { key });
        expect({ length, status: res.status }).toEqual({ length, status: length <= 64 ? 200 : 400 });
      }
    });

    it('describes response bodies exactly: their fields and nothing more, ids and timestamps in their one form', async () => {
      const { key } = await api.newKey();
      const created = await api.http.post('/v1/webhooks', {
        key,
        body: { url: 'https://hooks.example.com/exact', subscribed_events: ['task.failed'] },
      });
      const got = await api.http.get(`/v1/webhooks/${created.body.id}`, { key });
      const status = await api.http.get(`/v1/webhooks/${created.body.id}/secret-status`, { key });
      const webhook = { $ref: '#/components/schemas/WebhookResponse' };
      const secretStatus = { $ref: '#/components/schemas/SecretStatusResponse' };
      expect(schemaViolations(doc, webhook, got.body)).toEqual([]);
      expect(schemaViolations(doc, secretStatus, status.body)).toEqual([]);
      // However many rules a request breaks, the error body lists the first 20.
      const refused = await api.http.post('/v1/webhooks', {
        key,
        body: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`typo_${i}`, i])),
      });
      const error = { $ref: '#/components/schemas/ErrorResponse' };
      expect(refused.body.details).toHaveLength(20);
      expect(schemaViolations(doc, error, refused.body)).toEqual([]);
      const ok = { $ref: '#/components/schemas/OkResponse' };
      const revoked = { $ref: '#/components/schemas/RevokedPreviousResponse' };
      const log = { $ref: '#/components/schemas/DeliveryLogResponse' };
      const removed = await api.http.delete(`/v1/webhooks/${created.body.id}/previous-secrets`, { key });
      const page = await api.http.get(`/v1/webhooks/${created.body.id}/events`, { key });
      const deleted = await api.http.delete(`/v1/webhooks/${created.body.id}`, { key });
      for (const [schema, res] of [
        [revoked, removed],
        [log, page],
        [ok, deleted],
      ] as const)
        expect(schemaViolations(doc, schema, res.body)).toEqual([]);
      // What the service never answers, the document must not allow.
      for (const [schema, wrong] of [
        [webhook, { ...got.body, secret: created.body.secret }],
        [webhook, { ...got.body, subscribed_events: [] }],
        [webhook, { ...got.body, subscribed_events: ['task.failed', 'task.failed'] }],
        [webhook, { ...got.body, id: got.body.id.toLowerCase() }],
        [webhook, { ...got.body, id: `evt_${got.body.id.slice(3)}` }],
        [webhook, { ...got.body, created_at: '2026-11-22T09:41:07Z' }],
        [webhook, { ...got.body, updated_at: '2026-11-22T10:41:07.123+01:00' }],
        [secretStatus, { ...status.body, current: { ...status.body.current, fingerprint: 'sha256:' } }],
        [secretStatus, { ...status.body, current: { ...status.body.current, secret: created.body.secret } }],
        [error, { ...refused.body, details: [...refused.body.details, refused.body.details[0]] }],
        [ok, { ok: false }],
        [revoked, { ok: true, revoked: -1 }],
        [revoked, { ok: false, revoked: 0 }],
        [log, { events: [], pagination: { limit: 101, offset: 0, total: 0 } }],
        [log, { events: [], pagination: { limit: 0, offset: -1, total: 0 } }],
        [log, { events: [], pagination: { limit: 0, offset: 0, total: -1 } }],
      ] as const) {
        expect({ wrong, violations: schemaViolations(doc, schema, wrong).length > 0 }).toEqual({
          wrong,
          violations: true,
        });
      }
      for (const [name, schema] of Object.entries(doc.components.schemas as Record<string, any>)) {
        if (name.endsWith('Dto')) continue;
        expect({ name, additionalProperties: schema.additionalProperties }).toEqual({
          name,
          additionalProperties: false,
        });
      }
    });

    it("names on a read's 400 only what it answers: a query refused, never a body as invalid JSON", async () => {
      const { key } = await api.newKey();
      const { body: webhook } = await api.http.post('/v1/webhooks', {
        key,
        body: { url: 'https://hooks.example.com/read', subscribed_events: ['task.failed'] },
      });
      const known: string[] = doc.components.schemas.ErrorResponse.properties.code.enum;
      for (const [template, path] of [
        ['/v1/webhooks/{id}/events', `/v1/webhooks/${webhook.id}/events`],
        ['/v1/audit-events', '/v1/audit-events'],
      ]) {
        const described: string = doc.paths[template].get.responses['400'].description;
        const named = [...described.matchAll(/`([a-z_]+)`/g)]
          .map((m) => m[1])
          .filter((c) => known.includes(c));
        const answered = new Set<string>();
        // A query out of range, and a body that is not JSON (a read never parses its body).
        for (const [query, body] of [
          ['?limit=0', ''],
          ['', '{not json'],
        ]) {
          const exchange = await rawExchange(api.http.baseUrl, [
            `GET ${path}${query} HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\n` +
              `content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
          ]);
          const [raw] = exchange.responses;
          if (raw.status === 400) answered.add(raw.body.code);
        }
        expect({ template, named }).toEqual({ template, named: [...answered] });
      }
    });

    it('documents the x-request-id request header on every operation, as the service treats it', async () => {
      for (const [route, op] of operations()) {
        const param = (op.parameters ?? []).find(
          (p: { in: string; name: string }) => p.in === 'header' && p.name === 'x-request-id',
        );
        expect({ route, described: param?.description }).toEqual({
          route,
          described: expect.stringMatching(/1 to 128 printable ASCII.*else replaced by a new one/),
        });
      }
      // What the description says: a sane id is kept, one too long is replaced, on an unauthenticated route too.
      for (const path of ['/health/live', '/v1/webhooks']) {
        const kept = await api.http.get(path, { headers: { 'x-request-id': 'r'.repeat(128) } });
        const replaced = await api.http.get(path, { headers: { 'x-request-id': 'r'.repeat(129) } });
        expect(kept.headers.get('x-request-id')).toBe('r'.repeat(128));
        expect(replaced.headers.get('x-request-id')).not.toBe('r'.repeat(129));
      }
    });

    it('documents the answers of a rate-limited API key', async () => {
      const limited = await startApi({ env: { RATE_LIMIT_PER_MINUTE: '1' } });
      try {
        const { key } = await limited.newKey();
        const wrong: string[] = [];
        for (let i = 0; i < 2; i++) {
          const seen = await violations(limited, 'GET', '/v1/webhooks', '/v1/webhooks', { key });
          wrong.push(...seen.wrong);
          if (i === 1) expect(seen.res.status).toBe(429);
        }
        expect(wrong).toEqual([]);
      } finally {
        await limited.close();
      }
    });
  });
});
