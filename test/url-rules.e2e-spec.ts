import { startApi, type RunningApi } from './support/api-harness';
import { WEBHOOK_URL_CASES } from './fixtures/webhook-url-cases';

// The whole URL case table of libs/validation, through the HTTP API: what the library refuses, the API
// refuses with 400 and the same rule in details[]; what it accepts, the API creates.
describe('webhook URL rules through the HTTP API', () => {
  let api: RunningApi;
  let key: string;
  let existingId: string;

  beforeAll(async () => {
    api = await startApi({ env: { MAX_WEBHOOKS_PER_PROJECT: '100000' } });
    ({ key } = await api.newKey());
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/base', subscribed_events: ['task.completed'] },
    });
    existingId = created.body.id;
  });
  afterAll(() => api.close());

  it(`POST /v1/webhooks: all ${WEBHOOK_URL_CASES.length} cases`, async () => {
    const mismatches: string[] = [];
    for (const c of WEBHOOK_URL_CASES) {
      const res = await api.http.post('/v1/webhooks', {
        key,
        body: { url: c.url, subscribed_events: ['task.completed'] },
      });
      if (c.ok) {
        if (res.status !== 201 || res.body.url !== c.url)
          mismatches.push(`${c.url}: expected 201, got ${res.status}`);
      } else {
        const rules = (res.body?.details ?? [])
          .filter((d: { field: string }) => d.field === 'url')
          .map((d: { rule: string }) => d.rule);
        if (res.status !== 400 || res.body.code !== 'validation_failed' || !rules.includes(c.rule)) {
          mismatches.push(
            `${JSON.stringify(c.url)}: expected 400 ${c.rule}, got ${res.status} ${rules.join(',')}`,
          );
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('PATCH /v1/webhooks/{id}: every refused case, and a sample of accepted ones', async () => {
    const mismatches: string[] = [];
    const accepted = WEBHOOK_URL_CASES.filter((c) => c.ok).filter((_, i) => i % 5 === 0);
    for (const c of [...WEBHOOK_URL_CASES.filter((c) => !c.ok), ...accepted]) {
      const res = await api.http.patch(`/v1/webhooks/${existingId}`, { key, body: { url: c.url } });
      const ok = c.ok ? res.status === 200 && res.body.url === c.url : res.status === 400;
      if (!ok) mismatches.push(`${JSON.stringify(c.url)}: got ${res.status}`);
    }
    expect(mismatches).toEqual([]);
  });

  it('records webhook.url_rejected with the host and the rules, never the query', async () => {
    const res = await api.http.post('/v1/webhooks', {
      key,
      body: {
        url: 'https://metadata.google.internal/computeMetadata/v1/?token=hunter2',
        subscribed_events: ['task.completed'],
      },
    });
    expect(res.status).toBe(400);
    const events: { event: any }[] = await api.db.dataSource.query(
      "SELECT event FROM audit_events WHERE type = 'webhook.url_rejected' AND event->>'request_id' = $1",
      [res.body.request_id],
    );
    expect(events).toHaveLength(1);
    expect(events[0].event.data.host).toBe('metadata.google.internal');
    expect(events[0].event.data.rules).toEqual(expect.arrayContaining(['metadata_service']));
    expect(JSON.stringify(events[0].event)).not.toContain('hunter2');
  });

  it('refuses a URL on an update of an id that names no webhook, a NUL included, with 400, recorded for no webhook', async () => {
    for (const id of ['%00', 'wh_%00', 'nope']) {
      const res = await api.http.patch(`/v1/webhooks/${id}`, {
        key,
        body: { url: 'https://10.0.0.1/' },
      });
      expect({ id, status: res.status, code: res.body.code }).toEqual({
        id,
        status: 400,
        code: 'validation_failed',
      });
      const events: { event: any }[] = await api.db.dataSource.query(
        "SELECT event FROM audit_events WHERE type = 'webhook.url_rejected' AND event->>'request_id' = $1",
        [res.body.request_id],
      );
      expect(events.map((e) => e.event.webhook_id)).toEqual([null]);
    }
  });

  it('answers an over-long or many-label URL at once and keeps its audit event small', async () => {
    const refused = async (url: string) => {
      const res = await api.http.post('/v1/webhooks', {
        key,
        body: { url, subscribed_events: ['task.completed'] },
      });
      expect(res.status).toBe(400);
      const [row]: { event: any }[] = await api.db.dataSource.query(
        "SELECT event FROM audit_events WHERE type = 'webhook.url_rejected' AND event->>'request_id' = $1",
        [res.body.request_id],
      );
      return { res, event: row.event };
    };
    // 60,000 characters, a thousand times as many labels as a real name: refused for the length alone.
    const long = await refused('https://' + 'a.'.repeat(30_000) + 'internal/');
    expect(long.res.body.details).toEqual([
      { field: 'url', rule: 'length', message: 'url must be between 1 and 2048 characters long' },
    ]);
    expect(long.event.data).toEqual({ operation: 'create', host: null, rule: 'length', rules: ['length'] });

    // Within the length, the host is judged (an internal name), and recorded cut to a real host name's length.
    const manyLabels = await refused('https://' + 'a.'.repeat(1000) + 'internal/');
    expect(manyLabels.res.body.details.map((d: { rule: string }) => d.rule)).toEqual(['internal_name']);
    expect(manyLabels.event.data.host).toBe('a.'.repeat(126) + 'a…');
  });
});
