import { startApi, type RunningApi } from './support/api-harness';
import { responseViolations } from './support/openapi-schema';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_REDIS_URL } from './support/test-env';

// Every route of ../shared/spec/api.md, both tables (Anchor-compatible and ext), as method + path.
const SPEC_ROUTES = [
  'POST /v1/webhooks',
  'GET /v1/webhooks',
  'GET /v1/webhooks/{id}',
  'PATCH /v1/webhooks/{id}',
  'DELETE /v1/webhooks/{id}',
  'POST /v1/webhooks/{id}/rotate-secret',
  'POST /v1/webhooks/{id}/test',
  'GET /v1/webhooks/{id}/events',
  'PUT /v1/webhooks/{id}/rotation-policy',
  'GET /v1/webhooks/{id}/rotation-policy',
  'DELETE /v1/webhooks/{id}/rotation-policy',
  'PUT /v1/rotation-policy',
  'GET /v1/rotation-policy',
  'DELETE /v1/rotation-policy',
  'POST /v1/webhooks/{id}/secret/claim',
  'GET /v1/webhooks/{id}/secret-status',
  'DELETE /v1/webhooks/{id}/previous-secrets',
  'GET /v1/audit-events',
];

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
    // The page's scripts and styles are files served from swagger-ui-dist, through @fastify/static.
    const assets = [...res.text.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      const path = new URL(asset, 'http://docs.invalid/docs').pathname;
      const file = await api.http.get(path);
      expect({ path, status: file.status }).toEqual({ path, status: 200 });
      expect(file.text.length).toBeGreaterThan(100);
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
  });
});
