import { ManualClock } from '@app/domain';
import type { Job } from 'bullmq';
import { HousekeepingProcessor } from '../apps/worker/src/housekeeping/housekeeping.processor';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { rawExchange } from './support/raw-http';
import { startWorker } from './support/worker-harness';

describe('Idempotency-Key', () => {
  const clock = new ManualClock();
  let api: RunningApi;
  let key: string;
  let projectId: string;

  beforeAll(async () => {
    api = await startApi({ clock, env: { MAX_WEBHOOKS_PER_PROJECT: '50' } });
  });
  afterAll(() => api.close());
  beforeEach(async () => {
    ({ key, projectId } = await api.newKey());
  });

  const body = { url: 'https://hooks.example.com/idem', subscribed_events: ['task.completed'] };
  const create = (idem: string, b: unknown = body, k = key) =>
    api.http.post('/v1/webhooks', { key: k, body: b, headers: { 'idempotency-key': idem } });
  const rotate = (webhookId: string, idem: string) =>
    api.http.post(`/v1/webhooks/${webhookId}/rotate-secret`, { key, headers: { 'idempotency-key': idem } });
  const sendTest = (webhookId: string, idem: string) =>
    api.http.post(`/v1/webhooks/${webhookId}/test`, {
      key,
      body: { event_type: 'task.completed' },
      headers: { 'idempotency-key': idem },
    });
  const live = async (k = key) => (await api.http.get('/v1/webhooks', { key: k })).body.webhooks as unknown[];
  const rotations = async (webhookId: string) =>
    Number(
      (
        await api.db.dataSource.query(
          `SELECT count(*) AS n FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.rotated'`,
          [webhookId],
        )
      )[0].n,
    );

  it('returns the first response again, status and body, for the same key and body', async () => {
    const first = await create('k-1');
    expect(first.status).toBe(201);
    const again = await create('k-1', { subscribed_events: ['task.completed'], url: body.url });
    expect(again.status).toBe(201);
    // Byte for byte: the response stored with the change is the one that was sent.
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await live()).toHaveLength(1);
  });

  it('answers 409 idempotency_key_reused for the same key with another body', async () => {
    expect((await create('k-2')).status).toBe(201);
    const other = await create('k-2', { ...body, description: 'changed' });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('idempotency_key_reused');
    // A misused key is not a busy one: retrying the same request will not help.
    expect(other.headers.get('retry-after')).toBeNull();
    expect(await live()).toHaveLength(1);
  });

  it('scopes keys to the project', async () => {
    const other = await api.newKey();
    const a = await create('shared-key');
    const b = await create('shared-key', body, other.key);
    expect(b.status).toBe(201);
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.body.project_id).toBe(other.projectId);
    expect(a.body.project_id).toBe(projectId);
  });

  it('never runs concurrent duplicates twice', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => create('k-race')));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(new Set(results.map((r) => r.body.secret)).size).toBe(1);
    expect(await live()).toHaveLength(1);
  });

  it('makes rotate-secret idempotent: one rotation, the same secret again', async () => {
    const { id } = (await create('k-3')).body;
    const results = await Promise.all([rotate(id, 'r-1'), rotate(id, 'r-1'), rotate(id, 'r-1')]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    expect(await rotations(id)).toBe(1);
    const later = await rotate(id, 'r-2');
    expect(later.body.secret).not.toBe(results[0].body.secret);
    expect(await rotations(id)).toBe(2);
  });

  it('takes a rotation without a body and one with {} as the same request', async () => {
    const { id } = (await create('k-empty')).body;
    const headers = { 'idempotency-key': 'r-empty' };
    const first = await api.http.post(`/v1/webhooks/${id}/rotate-secret`, { key, headers });
    expect(first.status).toBe(200);
    const again = await api.http.post(`/v1/webhooks/${id}/rotate-secret`, { key, headers, body: {} });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.secret).toBe(first.body.secret);
    expect(await rotations(id)).toBe(1);
    const other = await api.http.post(`/v1/webhooks/${id}/rotate-secret`, {
      key,
      headers,
      body: { grace_period_hours: 0 },
    });
    expect(other.status).toBe(409);
  });

  it('takes the same path spelled another way as the same request: percent-encoded, absolute-form', async () => {
    const { id } = (await create('k-spelled')).body;
    const first = await rotate(id, 'r-spelled');
    expect(first.status).toBe(200);
    // The same webhook and route, with the first letters percent-encoded (the router decodes them).
    const encoded = await api.http.post(
      `/v1/webhooks/%${id.charCodeAt(0).toString(16)}${id.slice(1)}/rotate%2Dsecret`,
      {
        key,
        headers: { 'idempotency-key': 'r-spelled' },
      },
    );
    expect(encoded.status).toBe(200);
    expect(encoded.headers.get('idempotent-replayed')).toBe('true');
    expect(encoded.text).toBe(first.text);
    const { host } = new URL(api.http.baseUrl);
    const absolute = await rawExchange(api.http.baseUrl, [
      `POST http://${host}/v1/webhooks/${id}/rotate-secret HTTP/1.1\r\nhost: ${host}\r\nanchor-api-key: ${key}\r\n` +
        `idempotency-key: r-spelled\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`,
    ]);
    expect(absolute.responses[0].status).toBe(200);
    expect(absolute.responses[0].headers['idempotent-replayed']).toBe('true');
    expect(absolute.responses[0].text).toBe(first.text);
    expect(await rotations(id)).toBe(1);
  });

  it("never gives out a deleted webhook's secret again: the replay of its create is 404", async () => {
    const first = await create('k-deleted');
    expect(first.status).toBe(201);
    expect((await api.http.delete(`/v1/webhooks/${first.body.id}`, { key })).status).toBe(200);
    const again = await create('k-deleted');
    expect(again.status).toBe(404);
    expect(again.body.code).toBe('webhook_not_found');
    expect(JSON.stringify(again.body)).not.toContain(first.body.secret);
    expect(await live()).toHaveLength(0);
  });

  it('answers a replay about a webhook deleted since with 404, like the request without the key', async () => {
    const { id } = (await api.http.post('/v1/webhooks', { key, body })).body;
    const send = () => sendTest(id, 't-deleted');
    expect((await send()).status).toBe(202);
    expect((await api.http.delete(`/v1/webhooks/${id}`, { key })).status).toBe(200);
    const again = await send();
    expect({ status: again.status, code: again.body.code }).toEqual({
      status: 404,
      code: 'webhook_not_found',
    });
  });

  it('answers a replay 404, not "secret retired", when the webhook is deleted while the replay is checked', async () => {
    const { id } = (await create('k-race')).body;
    const first = await rotate(id, 'r-race');
    expect(first.status).toBe(200);
    // The deletion commits between the replay's two reads: after it found the webhook live, before its secret.
    const secrets = api.db.repos.secrets;
    const findValid = secrets.findValid.bind(secrets);
    const spy = jest.spyOn(secrets, 'findValid').mockImplementationOnce(async (...args) => {
      expect((await api.http.delete(`/v1/webhooks/${id}`, { key })).status).toBe(200);
      return findValid(...args);
    });
    try {
      const again = await rotate(id, 'r-race');
      expect(spy).toHaveBeenCalledTimes(1);
      expect({ status: again.status, code: again.body.code }).toEqual({
        status: 404,
        code: 'webhook_not_found',
      });
      expect(JSON.stringify(again.body)).not.toContain(first.body.secret);
    } finally {
      spy.mockRestore();
    }
  });

  it('replays a rotation while its secret still signs, and never once it is retired', async () => {
    const { id } = (await create('k-retire')).body;
    const first = await rotate(id, 'r-retire');
    expect(first.status).toBe(200);
    // A later rotation makes it the previous secret, which still signs during the grace period.
    expect((await rotate(id, 'r-later')).status).toBe(200);
    const during = await rotate(id, 'r-retire');
    expect(during.status).toBe(200);
    expect(during.body.secret).toBe(first.body.secret);
    // Ending the grace period destroys it: the stored copy is not handed out either.
    expect((await api.http.delete(`/v1/webhooks/${id}/previous-secrets`, { key })).status).toBe(200);
    const after = await rotate(id, 'r-retire');
    expect(after.status).toBe(409);
    expect(after.body.code).toBe('idempotency_key_reused');
    expect(JSON.stringify(after.body)).not.toContain(first.body.secret);
    expect(await rotations(id)).toBe(2);
  });

  it('keeps no copy of a destroyed secret: its stored response is emptied with it', async () => {
    const stored = async (idem: string) =>
      (
        await api.db.dataSource.query(
          'SELECT state, status, key_id, response FROM idempotency_keys WHERE project_id = $1 AND key = $2',
          [projectId, idem],
        )
      )[0] as { state: string; status: number; key_id: string | null; response: Buffer | null };
    const { id } = (await create('k-copy')).body;
    expect((await rotate(id, 'r-copy-1')).status).toBe(200);
    expect((await rotate(id, 'r-copy-2')).status).toBe(200);
    // The create's and the first rotation's secrets are previous ones now, still signing: their copies stay.
    for (const idem of ['k-copy', 'r-copy-1', 'r-copy-2'])
      expect((await stored(idem)).response).toBeInstanceOf(Buffer);
    // Revoking them destroys both secrets, and the two copies with them, in the same transaction.
    expect((await api.http.delete(`/v1/webhooks/${id}/previous-secrets`, { key })).body.revoked).toBe(2);
    for (const idem of ['k-copy', 'r-copy-1'])
      expect(await stored(idem)).toEqual({
        state: 'done',
        status: expect.any(Number),
        key_id: null,
        response: null,
      });
    expect((await stored('r-copy-2')).response).toBeInstanceOf(Buffer);
    // The key still stands for its one request: the replay is refused, nothing runs again.
    const again = await rotate(id, 'r-copy-1');
    expect({ status: again.status, code: again.body.code }).toEqual({
      status: 409,
      code: 'idempotency_key_reused',
    });
    expect(await rotations(id)).toBe(2);
    // Deleting the webhook destroys the current secret and its copy; a replay is then 404, as it was.
    expect((await api.http.delete(`/v1/webhooks/${id}`, { key })).status).toBe(200);
    expect((await stored('r-copy-2')).response).toBeNull();
    for (const replay of [() => create('k-copy'), () => rotate(id, 'r-copy-2')]) {
      const res = await replay();
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 404, code: 'webhook_not_found' });
    }
  });

  it('makes test events idempotent: one event, the same answer again', async () => {
    const { id } = (await api.http.post('/v1/webhooks', { key, body })).body;
    const send = (idem: string) => sendTest(id, idem);
    const first = await send('t-1');
    expect(first.status).toBe(202);
    const again = await send('t-1');
    expect(again.status).toBe(202);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const other = await send('t-2');
    expect(other.status).toBe(202);
    expect(other.body.external_event_id).not.toBe(first.body.external_event_id);
  });

  describe('stores the first response in the transaction of the change', () => {
    // Storing the response fails (as it would if Postgres went away right after the change): the change must
    // not stay behind without it, or a retry of the key would run it a second time.
    beforeEach(() =>
      api.db.dataSource.query(`
        CREATE OR REPLACE FUNCTION refuse_stored_response() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'storing the response failed'; END $$;
        CREATE TRIGGER refuse_stored_response BEFORE UPDATE ON idempotency_keys FOR EACH ROW
          WHEN (NEW.state = 'done' AND NEW.key LIKE 'atomic-%') EXECUTE FUNCTION refuse_stored_response();`),
    );
    afterEach(() =>
      api.db.dataSource.query(`
        DROP TRIGGER IF EXISTS refuse_stored_response ON idempotency_keys;
        DROP FUNCTION IF EXISTS refuse_stored_response();`),
    );
    const dropTrigger = () =>
      api.db.dataSource.query('DROP TRIGGER refuse_stored_response ON idempotency_keys');

    it('a create whose response cannot be stored is not made, and its retry creates once', async () => {
      const failed = await create('atomic-create');
      expect(failed.status).toBe(500);
      expect(await live()).toHaveLength(0);
      const audited = await api.db.dataSource.query(
        "SELECT 1 FROM audit_events WHERE project_id = $1 AND type LIKE 'webhook.%'",
        [projectId],
      );
      expect(audited).toHaveLength(0);
      await dropTrigger();
      const retried = await create('atomic-create');
      expect(retried.status).toBe(201);
      expect((await create('atomic-create')).body).toEqual(retried.body);
      expect(await live()).toHaveLength(1);
    });

    it('a rotation whose response cannot be stored is not made, and its retry rotates once', async () => {
      const created = (await api.http.post('/v1/webhooks', { key, body })).body;
      const rotateOnce = () => rotate(created.id, 'atomic-rotate');
      expect((await rotateOnce()).status).toBe(500);
      expect(await rotations(created.id)).toBe(0);
      const status = await api.http.get(`/v1/webhooks/${created.id}/secret-status`, { key });
      expect(status.body.previous).toEqual([]);
      await dropTrigger();
      const retried = await rotateOnce();
      expect(retried.status).toBe(200);
      expect(retried.body.secret).not.toBe(created.secret);
      expect((await rotateOnce()).body.secret).toBe(retried.body.secret);
      expect(await rotations(created.id)).toBe(1);
    });

    it('a test event whose response cannot be stored is not recorded, and its retry sends one', async () => {
      const { id } = (await api.http.post('/v1/webhooks', { key, body })).body;
      const send = () => sendTest(id, 'atomic-test');
      const deliveries = async () =>
        (await api.db.dataSource.query('SELECT id FROM deliveries WHERE webhook_id = $1', [id])).length;
      expect((await send()).status).toBe(500);
      expect(await deliveries()).toBe(0);
      await dropTrigger();
      const retried = await send();
      expect(retried.status).toBe(202);
      expect((await send()).body).toEqual(retried.body);
      expect(await deliveries()).toBe(1);
    });
  });

  it('a request whose claim a retry took over meanwhile changes nothing: one rotation for the key', async () => {
    const created = (await api.http.post('/v1/webhooks', { key, body })).body;
    const rotateOnce = () => rotate(created.id, 'taken-over');
    const waitingOnLock = (n: number) =>
      eventually(
        async () => {
          const [waiting] = await api.db.dataSource.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND query LIKE 'SELECT * FROM rotate_webhook_secret(%'`,
          );
          return waiting.n >= n;
        },
        10_000,
        `${n} rotations to wait for the row lock`,
      );
    // The first request stalls on the webhook's row lock, after its claim, for longer than a claim is trusted.
    const holder = api.db.dataSource.createQueryRunner();
    await holder.connect();
    try {
      await holder.startTransaction();
      await holder.query('SELECT 1 FROM webhooks WHERE id = $1 FOR UPDATE', [created.id]);
      const first = rotateOnce();
      await waitingOnLock(1);
      clock.advance(61_000);
      // Its retry takes the stale claim over and runs too.
      const retry = rotateOnce();
      await waitingOnLock(2);
      await holder.commitTransaction();
      const results = await Promise.all([first, retry]);
      expect(results.map((r) => r.status)).toEqual([409, 200]);
      expect(results[0].body.code).toBe('idempotency_key_reused');
      // Busy, not misused: the answer says when to try again (the retry then gets the replay).
      expect(results[0].headers.get('retry-after')).toBe('5');
      expect(await rotations(created.id)).toBe(1);
      const replay = await rotateOnce();
      expect(replay.status).toBe(200);
      expect(replay.text).toBe(results[1].text);
    } finally {
      if (holder.isTransactionActive) await holder.rollbackTransaction();
      await holder.release();
    }
  });

  it('checks the key before the body: a reused key with an invalid body is still 409', async () => {
    expect((await create('k-8')).status).toBe(201);
    const other = await create('k-8', { ...body, url: 'https://127.0.0.1/x' });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('idempotency_key_reused');
  });

  it('does not keep failures: a retry after an error runs again', async () => {
    const bad = { ...body, url: 'https://127.0.0.1/x' };
    expect((await create('k-4', bad)).status).toBe(400);
    expect((await create('k-4', bad)).status).toBe(400);
    expect((await create('k-4')).status).toBe(201);
  });

  it('gives a failed request its key back before its answer goes out: a retry at once, with another body too, runs', async () => {
    const repo = api.db.repos.idempotencyKeys;
    const release = repo.release.bind(repo);
    // A release that takes a while to commit, as under load: it waits until the test lets it go on.
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    const order: string[] = [];
    const slow = jest.spyOn(repo, 'release').mockImplementation(async (...args) => {
      await held;
      await release(...args);
      order.push('released');
    });
    try {
      const failed = create('k-4b', { ...body, url: 'https://127.0.0.1/x' }).then((res) => {
        order.push('answered');
        return res;
      });
      await eventually(() => slow.mock.calls.length === 1, 10_000, 'the release to start');
      // A later request answered meanwhile: an answer that did not wait for the release would be out by now.
      expect((await api.http.get('/v1/webhooks', { key })).status).toBe(200);
      letGo();
      expect((await failed).status).toBe(400);
      expect(order).toEqual(['released', 'answered']);
      expect((await create('k-4b')).status).toBe(201);
    } finally {
      letGo();
      slow.mockRestore();
    }
  });

  it('stores the first response encrypted, never the secret in the clear', async () => {
    const first = await create('k-5');
    const rows: { response: Buffer; key_id: string }[] = await api.db.dataSource.query(
      'SELECT response, key_id FROM idempotency_keys WHERE project_id = $1 AND key = $2',
      [projectId, 'k-5'],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].response.toString('latin1')).not.toContain(first.body.secret);
    expect(rows[0].response.toString('latin1')).not.toContain(first.body.id);
  });

  it('forgets a key after 24 hours', async () => {
    const first = await create('k-6');
    clock.advance(24 * 3600_000 + 1000);
    const later = await create('k-6');
    expect(later.status).toBe(201);
    expect(later.body.id).not.toBe(first.body.id);
  });

  it('has expired keys purged by the worker housekeeping', async () => {
    await create('k-7');
    const stored = () =>
      api.db.dataSource.query('SELECT 1 FROM idempotency_keys WHERE project_id = $1 AND key = $2', [
        projectId,
        'k-7',
      ]);
    expect(await stored()).toHaveLength(1);
    clock.advance(24 * 3600_000 + 1000);
    const worker = await startWorker({ clock });
    try {
      // The worker's own scheduler runs the same job as soon as it starts, so the purge may already be done
      // by then; after this run, it certainly is.
      await worker.get(HousekeepingProcessor).process({ name: 'secrets.expire', data: {} } as Job);
      expect(await stored()).toHaveLength(0);
    } finally {
      await worker.close();
    }
  });

  it('rejects a malformed key', async () => {
    const res = await create('x'.repeat(300));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
  });

  it('says why a key with a space is refused: it may not contain one', async () => {
    const res = await create('two words');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      code: 'validation_failed',
      error: 'Idempotency-Key must be 1 to 255 printable ASCII characters without spaces',
      details: [
        {
          field: 'Idempotency-Key',
          rule: 'format',
          message: 'must be 1 to 255 printable ASCII characters without spaces',
        },
      ],
    });
  });

  it('leaves requests without the header alone', async () => {
    const a = await api.http.post('/v1/webhooks', { key, body });
    const b = await api.http.post('/v1/webhooks', { key, body });
    expect(a.body.id).not.toBe(b.body.id);
  });
});
