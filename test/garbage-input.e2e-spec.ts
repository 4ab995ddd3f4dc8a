import fc from 'fast-check';
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { startApi, type RunningApi } from './support/api-harness';
import { rawExchange, type RawStep } from './support/raw-http';

// Whatever a client sends, the answer is a deliberate 2xx or 4xx with the error body, never a 500.
describe('garbage input never produces a 500', () => {
  let api: RunningApi;
  let key: string;
  let webhookId: string;

  beforeAll(async () => {
    api = await startApi({ env: { MAX_WEBHOOKS_PER_PROJECT: '1000' } });
    ({ key } = await api.newKey());
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/fuzz', subscribed_events: ['task.completed'] },
    });
    webhookId = created.body.id;
  });
  afterAll(() => api.close());

  const fieldValue = fc.oneof(
    fc.jsonValue(),
    fc.constantFrom(
      'https://hooks.example.com/x',
      'task.completed',
      ['task.completed'],
      'https://10.0.0.1/',
      '',
    ),
    fc.string({ maxLength: 3000 }),
    // Full UTF-16, unpaired surrogates and NUL included: Postgres text cannot store some of these.
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: fc.constantFrom('\u0000', '\ud800', '\udfff', 'a', '\u{1F600}'), maxLength: 10 }),
  );
  const body = fc.oneof(
    fc.jsonValue(),
    fc.record(
      {
        url: fieldValue,
        subscribed_events: fieldValue,
        description: fieldValue,
        enabled: fieldValue,
        grace_period_hours: fieldValue,
      },
      { requiredKeys: [] },
    ),
    fc.dictionary(fc.string({ maxLength: 20 }), fieldValue, { maxKeys: 6 }),
  );

  const expectDeliberate = (res: { status: number; body: any }) => {
    expect(res.status).toBeLessThan(500);
    if (res.status >= 400) {
      expect(typeof res.body.error).toBe('string');
      expect(typeof res.body.code).toBe('string');
    }
  };

  it('POST /v1/webhooks', async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) =>
        expectDeliberate(await api.http.post('/v1/webhooks', { key, body: b })),
      ),
      { numRuns: 150 },
    );
  });

  it('PATCH /v1/webhooks/{id}', async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) =>
        expectDeliberate(await api.http.patch(`/v1/webhooks/${webhookId}`, { key, body: b })),
      ),
      { numRuns: 150 },
    );
  });

  it('POST /v1/webhooks/{id}/rotate-secret', async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) =>
        expectDeliberate(await api.http.post(`/v1/webhooks/${webhookId}/rotate-secret`, { key, body: b })),
      ),
      { numRuns: 100 },
    );
  });

  it('an answer stays small however many unknown fields, and however long their names: 20 details at most, names cut at 64 characters', async () => {
    const many = JSON.stringify(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, 1])));
    for (const [method, path, problems] of [
      ['POST', '/v1/webhooks', 5002], // and url and subscribed_events are missing
      ['PATCH', `/v1/webhooks/${webhookId}`, 5000],
      ['POST', `/v1/webhooks/${webhookId}/secret/claim`, 5000],
    ] as const) {
      const res = await api.http.request(method, path, {
        key,
        raw: many,
        headers: { 'content-type': 'application/json' },
      });
      expect({ path, status: res.status, code: res.body.code }).toEqual({
        path,
        status: 400,
        code: 'validation_failed',
      });
      expect(res.body.error).toBe(
        `unknown field "k0" (${problems} problems, the first 20 listed in details)`,
      );
      expect(res.body.details).toHaveLength(20);
      expect(res.body.details[19]).toEqual({
        field: 'k19',
        rule: 'unknown_field',
        message: 'unknown field "k19"',
      });
      expect(res.text.length).toBeLessThan(3000);
    }
    const name = `${'n'.repeat(64)}${'\u{1F600}'.repeat(16_000)}`;
    const long = await api.http.patch(`/v1/webhooks/${webhookId}`, {
      key,
      raw: JSON.stringify({ [name]: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    const cut = `${'n'.repeat(64)}…`;
    expect(long.status).toBe(400);
    expect(long.text.length).toBeLessThan(1000);
    expect(long.body).toEqual({
      error: `unknown field "${cut}"`,
      code: 'validation_failed',
      details: [{ field: cut, rule: 'unknown_field', message: `unknown field "${cut}"` }],
      request_id: expect.any(String),
    });
    // A cut never splits a character in two: 63 characters and the emoji's first half would not be text.
    const astral = await api.http.patch(`/v1/webhooks/${webhookId}`, {
      key,
      raw: JSON.stringify({ [`${'n'.repeat(63)}${'\u{1F600}'.repeat(10)}`]: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(astral.body.details[0].field).toBe(`${'n'.repeat(63)}…`);
  });

  it('NUL and unpaired surrogates are refused by name in bodies', async () => {
    const res = await api.http.post('/v1/webhooks', {
      key,
      raw: '{"url":"https://hooks.example.com/x","subscribed_events":["task.completed"],"description":"a\\u0000b"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual([expect.objectContaining({ field: 'description', rule: 'text' })]);
    const lone = await api.http.patch(`/v1/webhooks/${webhookId}`, {
      key,
      raw: '{"description":"\\ud800"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(lone.status).toBe(400);
    expect(lone.body.details).toEqual([expect.objectContaining({ field: 'description', rule: 'text' })]);
  });

  it('a NUL in a query parameter is refused under the name of the parameter', async () => {
    for (const [name, value] of [
      ['webhook_id', 'wh_%00'],
      ['cursor', 'a%00b'],
    ]) {
      const res = await api.http.get(`/v1/audit-events?${name}=${value}`, { key });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        code: 'validation_failed',
        error: `${name} must not contain NUL characters or unpaired surrogates`,
        details: [
          {
            field: name,
            rule: 'text',
            message: `${name} must not contain NUL characters or unpaired surrogates`,
          },
        ],
      });
    }
  });

  it('an id with a NUL character is just an unknown webhook, on every route', async () => {
    const notFound = { status: 404, code: 'webhook_not_found' };
    const json = { 'content-type': 'application/json' };
    for (const [method, suffix, body] of [
      ['GET', '', undefined],
      ['PATCH', '', '{"description":"x"}'],
      ['DELETE', '', undefined],
      ['POST', '/rotate-secret', undefined],
      ['POST', '/test', '{"event_type":"task.completed"}'],
      ['GET', '/events', undefined],
      ['PUT', '/rotation-policy', '{"interval_days":7}'],
      ['GET', '/rotation-policy', undefined],
      ['DELETE', '/rotation-policy', undefined],
      ['POST', '/secret/claim', undefined],
      ['GET', '/secret-status', undefined],
      ['DELETE', '/previous-secrets', undefined],
    ] as const) {
      const res = await raw(
        method,
        `/v1/webhooks/${webhookId}%00${suffix}`,
        { 'anchor-api-key': key, ...(body !== undefined && json) },
        body === undefined ? [] : [Buffer.from(body)],
      );
      expect({ route: `${method} ${suffix}`, status: res.status, code: res.body.code }).toEqual({
        route: `${method} ${suffix}`,
        ...notFound,
      });
    }
    // Like any unknown id: the body's own faults come first.
    const badBody = await raw('PATCH', `/v1/webhooks/wh_%00`, { 'anchor-api-key': key, ...json }, [
      Buffer.from('{"enabled":"yes"}'),
    ]);
    expect({ status: badBody.status, code: badBody.body.code }).toEqual({
      status: 400,
      code: 'validation_failed',
    });
    // The webhook itself is untouched.
    expect((await api.http.get(`/v1/webhooks/${webhookId}`, { key })).status).toBe(200);
  });

  it('a body nested thousands deep is a 400 naming the limit, with or without an Idempotency-Key', async () => {
    // About 40 KB: under the body limit, and deep enough to overflow any recursive walk of it.
    const deep = `${'['.repeat(20_000)}1${']'.repeat(20_000)}`;
    const create = `{"url":"https://hooks.example.com/x","subscribed_events":["task.completed"],"x":${deep}}`;
    const refused = [
      await api.http.post('/v1/webhooks', {
        key,
        raw: create,
        headers: { 'content-type': 'application/json' },
      }),
      await api.http.post('/v1/webhooks', {
        key,
        raw: create,
        headers: { 'content-type': 'application/json', 'idempotency-key': 'deep-body-1' },
      }),
      await api.http.post(`/v1/webhooks/${webhookId}/rotate-secret`, {
        key,
        raw: `{"grace_period_hours":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}`,
        headers: { 'content-type': 'application/json' },
      }),
    ];
    for (const res of refused) {
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        code: 'validation_failed',
        error: 'request body must not nest deeper than 64 levels',
        details: [
          { field: 'body', rule: 'depth', message: 'request body must not nest deeper than 64 levels' },
        ],
      });
    }
    // At the limit (the body object and 63 arrays in it: 64 levels) the body is read, and refused for the field.
    const shallow = await api.http.post('/v1/webhooks', {
      key,
      raw: `{"url":"https://hooks.example.com/x","subscribed_events":["task.completed"],"x":${'['.repeat(63)}${']'.repeat(63)}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(shallow.status).toBe(400);
    expect(shallow.body.details).toEqual([expect.objectContaining({ field: 'x', rule: 'unknown_field' })]);
  });

  it('raw bytes as a body, and odd ids in the path', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 512 }),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }),
        async (bytes, id) => {
          const path = `/v1/webhooks/${encodeURIComponent(id)}`;
          expectDeliberate(
            await api.http.post('/v1/webhooks', {
              key,
              raw: Buffer.from(bytes),
              headers: { 'content-type': 'application/json' },
            }),
          );
          expectDeliberate(await api.http.get(path, { key }));
          expectDeliberate(
            await api.http.patch(path, {
              key,
              raw: Buffer.from(bytes),
              headers: { 'content-type': 'application/json' },
            }),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  /** One raw HTTP exchange, for what fetch will not send (a GET body, a chunked body, a malformed path). */
  const raw = (
    method: string,
    path: string,
    headers: Record<string, string>,
    chunks: Buffer[] = [],
  ): Promise<{ status: number; headers: Record<string, unknown>; body: any }> =>
    new Promise((resolve, reject) => {
      const url = new URL(api.http.baseUrl);
      const req = request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
        const got: Buffer[] = [];
        res.on('data', (c: Buffer) => got.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: JSON.parse(Buffer.concat(got).toString() || 'null'),
          }),
        );
      });
      req.on('error', reject);
      for (const c of chunks) req.write(c);
      req.end();
    });

  it('a body that is not valid UTF-8 is invalid JSON, with or without a Content-Length', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"url":"https://a.example.com","subscribed_events":["task.failed"],"description":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    const json = { 'anchor-api-key': key, 'content-type': 'application/json' };
    for (const headers of [
      { ...json, 'content-length': String(bytes.length) },
      { ...json, 'transfer-encoding': 'chunked' },
    ]) {
      const res = await raw('POST', '/v1/webhooks', headers, [bytes.subarray(0, 10), bytes.subarray(10)]);
      expect({ status: res.status, code: res.body.code, error: res.body.error }).toEqual({
        status: 400,
        code: 'invalid_json',
        error: 'request body is not valid UTF-8',
      });
    }
  });

  it('a body sent with a content coding is refused by name, compressed or not; identity is no coding', async () => {
    const json = '{"url":"https://coded.example.com/h","subscribed_events":["task.failed"]}';
    const headers = { 'anchor-api-key': key, 'content-type': 'application/json' };
    for (const [coding, bytes] of [
      ['gzip', gzipSync(json)],
      ['gzip', Buffer.from(json)],
      ['GZIP, br', Buffer.from(json)],
    ] as const) {
      const res = await raw('POST', '/v1/webhooks', { ...headers, 'content-encoding': coding }, [bytes]);
      expect({ status: res.status, code: res.body.code, details: res.body.details }).toEqual({
        status: 400,
        code: 'validation_failed',
        details: [
          {
            field: 'content-encoding',
            rule: 'form',
            message: `content-encoding "${coding.toLowerCase()}" is not supported: send the JSON body as is`,
          },
        ],
      });
    }
    const plain = await raw('POST', '/v1/webhooks', { ...headers, 'content-encoding': 'identity' }, [
      Buffer.from(json),
    ]);
    expect(plain.status).toBe(201);
  });

  it('a body of whitespace JSON does not know (NBSP, U+2028, VT, a second BOM) is invalid JSON, not an empty body', async () => {
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/blank', subscribed_events: ['task.completed'] },
    });
    const id: string = created.body.id;
    for (const blank of ['\u00a0', ' \u2028 ', '\u3000', '\u000b', '\f', '\ufeff\ufeff']) {
      for (const [method, path] of [
        ['POST', `/v1/webhooks/${id}/rotate-secret`],
        ['DELETE', `/v1/webhooks/${id}`],
      ] as const) {
        const res = await api.http.request(method, path, { key, raw: blank });
        expect({ blank, method, status: res.status, code: res.body.code }).toEqual({
          blank,
          method,
          status: 400,
          code: 'invalid_json',
        });
      }
    }
    const status = await api.http.get(`/v1/webhooks/${id}/secret-status`, { key });
    expect({ status: status.status, trigger: status.body.current.trigger }).toEqual({
      status: 200,
      trigger: 'created',
    });
    // JSON's own whitespace, and the one BOM UTF-8 allows, still read as no body.
    const rotated = await api.http.post(`/v1/webhooks/${id}/rotate-secret`, { key, raw: ' \t\r\n' });
    expect(rotated.status).toBe(200);
    const deleted = await api.http.delete(`/v1/webhooks/${id}`, { key, raw: '\ufeff' });
    expect(deleted.status).toBe(200);
  });

  it('a JSON body after one BOM is read; after a second one it is invalid JSON', async () => {
    const json = '{"url":"https://hooks.example.com/bom","subscribed_events":["task.completed"]}';
    const twice = await api.http.post('/v1/webhooks', { key, raw: `\ufeff\ufeff${json}` });
    expect({ status: twice.status, code: twice.body.code }).toEqual({ status: 400, code: 'invalid_json' });
    const once = await api.http.post('/v1/webhooks', { key, raw: `\ufeff${json}` });
    expect(once.status).toBe(201);
    const id: string = once.body.id;
    const patched = await api.http.patch(`/v1/webhooks/${id}`, { key, raw: '\ufeff\ufeff{}' });
    expect({ status: patched.status, code: patched.body.code }).toEqual({
      status: 400,
      code: 'invalid_json',
    });
    expect((await api.http.delete(`/v1/webhooks/${id}`, { key })).status).toBe(200);
  });

  it.each([
    ['json', 'json'],
    ['text', 'text'],
    ['/', '/'],
    [';', ';'],
    ['application/', 'application/'],
    ['a b/c', 'a b/c'],
    ['empty', ''],
    ['8,000 characters', 'x'.repeat(8000)],
  ])(
    'a Content-Type that is not a media type (%s) is read as none: the body is still JSON, never a 415',
    async (contentType) => {
      const headers = { 'content-type': contentType };
      const created = await api.http.post('/v1/webhooks', {
        key,
        raw: '{"url":"https://hooks.example.com/odd-type","subscribed_events":["task.completed"]}',
        headers,
      });
      expect({ status: created.status, secret: typeof created.body.secret }).toEqual({
        status: 201,
        secret: 'string',
      });
      const rotated = await api.http.post(`/v1/webhooks/${created.body.id}/rotate-secret`, {
        key,
        raw: '{"grace_period_hours":1}',
        headers,
      });
      expect({ status: rotated.status, secret: typeof rotated.body.secret }).toEqual({
        status: 200,
        secret: 'string',
      });
      const notJson = await api.http.post('/v1/webhooks', { key, raw: 'url=https://x', headers });
      expect({ status: notJson.status, code: notJson.body.code }).toEqual({
        status: 400,
        code: 'invalid_json',
      });
      await api.http.delete(`/v1/webhooks/${created.body.id}`, { key });
    },
  );

  it('a path that is not valid percent-encoding gets the error body and a request id', async () => {
    const res = await raw('GET', '/v1/webhooks/%ZZ', { 'anchor-api-key': key, 'x-request-id': 'bad-path-1' });
    expect(res.status).toBe(400);
    expect(res.headers['x-request-id']).toBe('bad-path-1');
    expect(res.body).toEqual({
      error: 'the request path is not valid percent-encoding',
      code: 'validation_failed',
      details: [{ field: 'path', rule: 'form', message: 'the request path is not valid percent-encoding' }],
      request_id: 'bad-path-1',
    });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('a /v1 path that is not valid percent-encoding answers 401 first without a valid key', async () => {
    for (const headers of [{}, { 'anchor-api-key': 'ak_unknown' }] as Record<string, string>[]) {
      const res = await raw('GET', '/v1/webhooks/%ZZ', { ...headers, 'x-request-id': 'bad-path-2' });
      expect({ status: res.status, body: res.body, id: res.headers['x-request-id'] }).toEqual({
        status: 401,
        body: {
          error: 'a valid anchor-api-key header is required',
          code: 'unauthorized',
          request_id: 'bad-path-2',
        },
        id: 'bad-path-2',
      });
      expect(res.headers['cache-control']).toBe('no-store');
    }
    // Outside /v1 no key is asked for: the path's own refusal.
    const outside = await raw('GET', '/%ZZ', {});
    expect({ status: outside.status, code: outside.body.code }).toEqual({
      status: 400,
      code: 'validation_failed',
    });
  });

  it('a /v1 path that is not valid percent-encoding is answered alike under a method no route has', async () => {
    const anonymous = await raw('TRACE', '/v1/webhooks/%ZZ', { 'x-request-id': 'bad-path-3' });
    expect({
      status: anonymous.status,
      code: anonymous.body.code,
      id: anonymous.headers['x-request-id'],
    }).toEqual({
      status: 401,
      code: 'unauthorized',
      id: 'bad-path-3',
    });
    const res = await raw('PROPFIND', '/v1/webhooks/%ZZ', {
      'anchor-api-key': key,
      'x-request-id': 'bad-path-4',
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'the request path is not valid percent-encoding',
      code: 'validation_failed',
      details: [{ field: 'path', rule: 'form', message: 'the request path is not valid percent-encoding' }],
      request_id: 'bad-path-4',
    });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['ratelimit-limit']).toBeDefined();
  });

  it('an id of any length is just an unknown webhook', async () => {
    const res = await api.http.get(`/v1/webhooks/wh_${'A'.repeat(6000)}`, { key });
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 404, code: 'webhook_not_found' });
  });

  it('a declared body over 64 KiB is a 413 on every route, also where no body is read, after the key check', async () => {
    const big = Buffer.alloc(70 * 1024, 0x20);
    for (const [method, path] of [
      ['GET', '/v1/webhooks'],
      ['GET', `/v1/webhooks/${webhookId}`],
      ['POST', '/v1/webhooks'],
    ]) {
      const res = await raw(method, path, { 'anchor-api-key': key, 'content-length': String(big.length) }, [
        big,
      ]);
      expect({ path, status: res.status, code: res.body.code }).toEqual({
        path,
        status: 413,
        code: 'payload_too_large',
      });
    }
    // The key comes first: without a valid one, 401 whatever the body's size, declared or chunked.
    for (const headers of [
      { 'content-length': String(big.length) } as Record<string, string>,
      { 'anchor-api-key': 'ak_unknown', 'content-length': String(big.length) },
      { 'anchor-api-key': 'ak_unknown', 'transfer-encoding': 'chunked' },
    ]) {
      const res = await raw('POST', '/v1/webhooks', headers, [big]);
      expect({ headers, status: res.status, code: res.body.code }).toEqual({
        headers,
        status: 401,
        code: 'unauthorized',
      });
    }
  });

  /** Writes `bytes` on a fresh connection and returns the one answer, read until the server closes it. */
  const rawBytes = async (bytes: string) => (await rawExchange(api.http.baseUrl, [bytes])).responses[0];

  it('a request that is not valid HTTP gets the error body and a request id', async () => {
    for (const bytes of [
      'GARBAGE\r\n\r\n',
      `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\ncontent-length: abc\r\n\r\n{}`,
    ]) {
      const res = await rawBytes(bytes);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        error: 'the request is not valid HTTP/1.1',
        code: 'validation_failed',
        details: [{ field: 'request', rule: 'form', message: 'the request is not valid HTTP/1.1' }],
        request_id: expect.any(String),
      });
      expect(res.head).toContain(`x-request-id: ${res.body.request_id}`);
    }
    const overflow = await rawBytes(
      `GET /v1/webhooks HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect({ status: overflow.status, code: overflow.body.code }).toEqual({
      status: 431,
      code: 'request_headers_too_large',
    });
  });

  it('an HTTP/1.1 request without a Host header gets 400 in the error body with its request id; HTTP/1.0 needs none', async () => {
    const res = await rawExchange(api.http.baseUrl, [
      `GET /v1/webhooks HTTP/1.1\r\nanchor-api-key: ${key}\r\nx-request-id: no-host-1\r\n\r\n`,
    ]);
    expect(res.closed).toBe(true);
    expect(res.responses).toHaveLength(1);
    expect(res.responses[0].status).toBe(400);
    expect(res.responses[0].headers['x-request-id']).toBe('no-host-1');
    expect(res.responses[0].headers.connection).toBe('close');
    const message = 'an HTTP/1.1 request must have a Host header';
    expect(res.responses[0].body).toEqual({
      error: message,
      code: 'validation_failed',
      details: [{ field: 'host', rule: 'form', message }],
      request_id: 'no-host-1',
    });
    // Before the key check: the request is refused for its form, whoever sends it.
    const anonymous = await rawExchange(api.http.baseUrl, [
      'POST /v1/webhooks HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}',
    ]);
    expect(anonymous.responses.map((r) => [r.status, r.body?.details?.[0]?.field])).toEqual([[400, 'host']]);
    for (const path of ['/health/live', '/v1/webhooks']) {
      const old = await rawExchange(api.http.baseUrl, [
        `GET ${path} HTTP/1.0\r\nanchor-api-key: ${key}\r\n\r\n`,
      ]);
      expect({ path, statuses: old.responses.map((r) => r.status) }).toEqual({ path, statuses: [200] });
    }
  });

  it('an Expect header other than 100-continue gets 417 expectation_failed in the error body, and the connection closes', async () => {
    const body = '{"url":"https://hooks.example.com/expect","subscribed_events":["task.completed"]}';
    for (const expect_ of ['200-ok', '100-continued', '']) {
      const res = await rawExchange(api.http.baseUrl, [
        `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\nx-request-id: expect-1\r\n` +
          `content-type: application/json\r\ncontent-length: ${body.length}\r\nexpect: ${expect_}\r\n\r\n`,
      ]);
      expect(res.closed).toBe(true);
      expect(res.responses).toHaveLength(1);
      const [answer] = res.responses;
      expect({ expect: expect_, status: answer.status }).toEqual({ expect: expect_, status: 417 });
      expect(answer.body).toEqual({
        error: 'only "Expect: 100-continue" can be met',
        code: 'expectation_failed',
        request_id: 'expect-1',
      });
      expect(answer.headers['x-request-id']).toBe('expect-1');
      expect(answer.headers['cache-control']).toBe('no-store');
      expect(answer.headers.connection).toBe('close');
    }
  });

  it('Expect: 100-continue is met: 100 Continue, then the body, then the answer', async () => {
    const body = '{"url":"https://hooks.example.com/continue","subscribed_events":["task.completed"]}';
    const res = await rawExchange(api.http.baseUrl, [
      `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n`,
      200,
      body,
    ]);
    expect(res.responses.map((r) => r.status)).toEqual([100, 201]);
    expect(res.responses[1].body.secret).toMatch(/^[0-9a-f]{64}$/);
  });

  it('CONNECT gets 404 not_found in the error body with its request id, and the connection closes', async () => {
    for (const [target, headers] of [
      ['hooks.example.com:443', 'Host: hooks.example.com:443\r\n'],
      ['/v1/webhooks', `Host: x\r\nanchor-api-key: ${key}\r\n`],
      ['/v1/webhooks', 'Host: x\r\n'],
    ]) {
      const res = await rawExchange(api.http.baseUrl, [
        `CONNECT ${target} HTTP/1.1\r\n${headers}x-request-id: connect-1\r\n\r\nbytes for the tunnel`,
      ]);
      expect(res.closed).toBe(true);
      expect(res.responses).toHaveLength(1);
      expect({ target, status: res.responses[0].status }).toEqual({ target, status: 404 });
      expect(res.responses[0].body).toEqual({
        error: `no route CONNECT ${target}`,
        code: 'not_found',
        request_id: 'connect-1',
      });
      expect(res.responses[0].headers['x-request-id']).toBe('connect-1');
      expect(res.responses[0].headers.connection).toBe('close');
    }
    // The server is still there.
    expect((await api.http.get('/health/live')).status).toBe(200);
  });

  it('QUERY without a Content-Type or without a body gets 400 validation_failed with its detail, after the key check', async () => {
    for (const [headers, body] of [
      ['', ''],
      ['content-type: application/json\r\ncontent-length: 0\r\n', ''],
    ]) {
      const res = await rawExchange(api.http.baseUrl, [
        `QUERY /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\nx-request-id: query-1\r\n` +
          `${headers}connection: close\r\n\r\n${body}`,
      ]);
      expect(res.responses).toHaveLength(1);
      const [answer] = res.responses;
      expect({ headers, status: answer.status }).toEqual({ headers, status: 400 });
      expect(answer.body).toEqual({
        error: expect.any(String),
        code: 'validation_failed',
        details: [{ field: 'request', rule: 'form', message: answer.body.error }],
        request_id: 'query-1',
      });
    }
    const anonymous = await rawExchange(api.http.baseUrl, [
      'QUERY /v1/webhooks HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n',
    ]);
    expect(anonymous.responses.map((r) => [r.status, r.body.code])).toEqual([[401, 'unauthorized']]);
  });

  describe('bytes that are not HTTP after a whole request on the same connection', () => {
    const create = (key: string, extra = '') => {
      const body = '{"url":"https://hooks.example.com/pipelined","subscribed_events":["task.completed"]}';
      return (
        `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\n${extra}\r\n${body}`
      );
    };
    const list = (key: string, extra = '') =>
      `GET /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\n${extra}\r\n`;

    it('the request is answered (a create with its one-time secret), the garbage gets nothing, the connection closes', async () => {
      const fresh = await api.newKey();
      const res = await rawExchange(api.http.baseUrl, [
        create(fresh.key) + 'GARB',
        20,
        'AGE\r\n',
        20,
        'more\r\n\r\n',
      ]);
      expect(res.closed).toBe(true);
      expect(res.responses.map((r) => r.status)).toEqual([201]);
      expect(res.responses[0].body.secret).toMatch(/^[0-9a-f]{64}$/);
      expect(res.responses[0].headers.connection).toBe('close');
      expect(res.rest).toBe('');
      const listed = await api.http.get('/v1/webhooks', { key: fresh.key });
      expect(listed.body.webhooks.map((w: { id: string }) => w.id)).toEqual([res.responses[0].body.id]);
    });

    it('every request before the garbage is answered, in order', async () => {
      const fresh = await api.newKey();
      const res = await rawExchange(api.http.baseUrl, [
        list(fresh.key) + create(fresh.key) + 'GARBAGE\r\n\r\n',
      ]);
      expect(res.closed).toBe(true);
      expect(res.responses.map((r) => r.status)).toEqual([200, 201]);
      expect(res.responses[1].body.secret).toMatch(/^[0-9a-f]{64}$/);
    });

    it('a request with Connection: close and one more byte is answered', async () => {
      const res = await rawExchange(api.http.baseUrl, [list(key, 'Connection: close\r\n') + 'X']);
      expect(res.closed).toBe(true);
      expect(res.responses.map((r) => r.status)).toEqual([200]);
    });

    it('garbage sent once the answer is out gets its own 400', async () => {
      const res = await rawExchange(api.http.baseUrl, [list(key), { afterResponses: 1 }, 'GARBAGE\r\n\r\n']);
      expect(res.closed).toBe(true);
      expect(res.responses.map((r) => [r.status, r.body?.code])).toEqual([
        [200, undefined],
        [400, 'validation_failed'],
      ]);
    });

    it('a request whose own body is not valid HTTP gets the 400, and the connection closes', async () => {
      const res = await rawExchange(api.http.baseUrl, [
        `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\ncontent-type: application/json\r\n` +
          `transfer-encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n`,
      ]);
      expect(res.closed).toBe(true);
      expect(res.responses.map((r) => [r.status, r.body?.code])).toEqual([[400, 'validation_failed']]);
    });
  });
});

// A client that sends its request slowly, or stops half way, cannot hold a connection: the whole request (headers
// and body) must arrive within HTTP_REQUEST_TIMEOUT_MS, here 1 s. The waits below are the server's own timer.
describe('a request not received in time', () => {
  let api: RunningApi;
  let key: string;

  beforeAll(async () => {
    api = await startApi({ env: { HTTP_REQUEST_TIMEOUT_MS: '1000' } });
    ({ key } = await api.newKey());
  });
  afterAll(() => api.close());

  /** Bytes every 200 ms, for as long as the connection is open. */
  function* trickle(head: string, byte: string): Generator<RawStep> {
    yield head;
    for (;;) {
      yield 200;
      yield byte;
    }
  }
  const post = (headers: string) =>
    `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\nx-request-id: slow-1\r\n${headers}\r\n`;

  // The request id is the request's own once its head was read, else a new one.
  it.each([
    ['a body that stops half way', [post(`anchor-api-key: KEY\r\ncontent-length: 10\r\n`) + '{'], 'slow-1'],
    ['a body that trickles', trickle(post(`anchor-api-key: KEY\r\ncontent-length: 1000\r\n`), ' '), 'slow-1'],
    [
      'a chunked body that trickles',
      trickle(post(`anchor-api-key: KEY\r\ntransfer-encoding: chunked\r\n`), '1\r\n \r\n'),
      'slow-1',
    ],
    [
      'headers that trickle',
      trickle(
        `GET /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: KEY\r\nx-request-id: slow-1\r\n`,
        'x-a: 1\r\n',
      ),
      expect.not.stringMatching(/^slow-1$/),
    ],
  ])(
    '%s: 408 request_timeout in the error body, and the connection closed',
    async (_, steps, requestId) => {
      const withKey = (function* () {
        for (const s of steps) yield typeof s === 'string' ? s.replace('KEY', key) : s;
      })();
      const res = await rawExchange(api.http.baseUrl, withKey);
      expect(res.closed).toBe(true);
      expect(res.responses).toHaveLength(1);
      const [answer] = res.responses;
      expect(answer.status).toBe(408);
      expect(answer.body).toEqual({
        error: 'the request was not received in time',
        code: 'request_timeout',
        request_id: requestId,
      });
      expect(answer.headers['x-request-id']).toBe(answer.body.request_id);
      expect(answer.headers.connection).toBe('close');
    },
    30_000,
  );

  it('a whole request followed by one that stalls: the first is answered, then the 408', async () => {
    const res = await rawExchange(api.http.baseUrl, [
      `GET /v1/webhooks HTTP/1.1\r\nHost: x\r\nanchor-api-key: ${key}\r\n\r\n` +
        post(`anchor-api-key: ${key}\r\ncontent-length: 10\r\n`) +
        '{',
    ]);
    expect(res.closed).toBe(true);
    expect(res.responses.map((r) => [r.status, r.body?.code])).toEqual([
      [200, undefined],
      [408, 'request_timeout'],
    ]);
  }, 30_000);

  it('without a key the 401 goes out at once, and the connection still closes when the body does not come', async () => {
    const res = await rawExchange(api.http.baseUrl, trickle(post('content-length: 1000\r\n'), ' '));
    expect(res.closed).toBe(true);
    expect(res.responses.map((r) => [r.status, r.body?.code])).toEqual([[401, 'unauthorized']]);
  }, 30_000);

  it('a request sent in time is answered normally', async () => {
    const body = '{"url":"https://hooks.example.com/in-time","subscribed_events":["task.completed"]}';
    const res = await rawExchange(api.http.baseUrl, [
      post(`anchor-api-key: ${key}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n`),
      300,
      body.slice(0, 10),
      300,
      body.slice(10),
    ]);
    expect(res.responses.map((r) => r.status)).toEqual([201]);
  }, 30_000);
});
