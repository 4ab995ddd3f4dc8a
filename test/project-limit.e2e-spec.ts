import { startApi, type RunningApi } from './support/api-harness';

// Large per-project limits count live webhooks in several counter rows (shards), so that one busy project's
// creates do not queue on a single row lock. These tests hold that path to the same guarantees as the
// single-row one: the limit is exact under races, deletes free slots, and a project default rotation
// policy set during creates reaches every new webhook.
const LIMIT = 2000;
const SHARDS = 16;

describe('per-project limit with a sharded counter', () => {
  let api: RunningApi;
  let key: string;
  let projectId: string;

  beforeAll(async () => {
    api = await startApi({ env: { MAX_WEBHOOKS_PER_PROJECT: String(LIMIT) } });
  });
  afterAll(() => api.close());
  beforeEach(async () => {
    ({ key, projectId } = await api.newKey());
  });

  const create = (i: number, k = key, idempotencyKey?: string) =>
    api.http.post('/v1/webhooks', {
      key: k,
      body: { url: `https://hooks.example.com/${i}`, subscribed_events: ['task.completed'] },
      headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
    });
  const shards = async (): Promise<number[]> =>
    (
      await api.db.dataSource.query(
        'SELECT live_webhooks FROM project_quotas WHERE project_id = $1 ORDER BY shard',
        [projectId],
      )
    ).map((r: { live_webhooks: number }) => r.live_webhooks);
  const liveCount = async (): Promise<number> =>
    Number(
      (
        await api.db.dataSource.query(
          'SELECT count(*) AS n FROM webhooks WHERE project_id = $1 AND deleted_at IS NULL',
          [projectId],
        )
      )[0].n,
    );
  /** Pretends `n` more webhooks are live, spread over the shards (the counters are all the limit reads). */
  const fill = async (n: number) => {
    await api.db.dataSource.query(
      `UPDATE project_quotas SET live_webhooks = live_webhooks + ($2::int / $3::int) + CASE WHEN shard < $2::int % $3::int THEN 1 ELSE 0 END
       WHERE project_id = $1`,
      [projectId, n, SHARDS],
    );
  };

  it('spreads creates far from the limit over the shards, counting each exactly once', async () => {
    expect((await create(0)).status).toBe(201);
    expect(await shards()).toHaveLength(SHARDS);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => create(i + 1)));
    expect(results.map((r) => r.status)).toEqual(Array(40).fill(201));
    const counts = await shards();
    expect(counts.reduce((a, b) => a + b, 0)).toBe(41);
    expect(counts.filter((c) => c > 0).length).toBeGreaterThan(1);
    expect(await liveCount()).toBe(41);
  });

  // From 50 free slots the first creates take sharded slots and the last ones must count exactly; in between,
  // a sharded create that finds the project too close after all is retried exactly. With an Idempotency-Key
  // each create runs in a transaction that also stores its response.
  it.each([
    [30, false],
    [50, false],
    [50, true],
  ])(
    'holds the limit exactly when 100 creates race for the last %i slots (Idempotency-Key: %s)',
    async (free, idempotent) => {
      expect((await create(0)).status).toBe(201);
      await fill(LIMIT - 1 - free);
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => create(i + 1, key, idempotent ? `race-${i}` : undefined)),
      );
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(free);
      expect(statuses.filter((s) => s === 409)).toHaveLength(100 - free);
      expect(results.find((r) => r.status === 409)!.body.code).toBe('webhook_limit_reached');
      expect((await shards()).reduce((a, b) => a + b, 0)).toBe(LIMIT);
      expect(await liveCount()).toBe(1 + free);
    },
  );

  // Whether a sharded create finds the project too close to its limit after all depends on a race; here it
  // always does (a trigger inflates the shard it increments), so the exact retry runs every time.
  it.each([false, true])(
    'retries exactly a sharded create that finds the project too close after all (Idempotency-Key: %s)',
    async (idempotent) => {
      expect((await create(0)).status).toBe(201);
      await fill(LIMIT - 101);
      // Each inflation also draws from a sequence, which a rollback does not undo: the count of both attempts.
      await api.db.dataSource.query(`
        CREATE SEQUENCE inflations;
        CREATE FUNCTION inflate_shard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM nextval('inflations'); NEW.live_webhooks := NEW.live_webhooks + 1000; RETURN NEW; END $$;
        CREATE TRIGGER inflate_shard BEFORE UPDATE ON project_quotas FOR EACH ROW
          WHEN (NEW.project_id = '${projectId}' AND NEW.live_webhooks = OLD.live_webhooks + 1)
          EXECUTE FUNCTION inflate_shard();`);
      try {
        const res = await create(1, key, idempotent ? 'too-close' : undefined);
        expect(res.status).toBe(201);
        expect(await liveCount()).toBe(2);
        // Two slots taken: the sharded one, refused on its re-check, then the exact one.
        const [drawn] = await api.db.dataSource.query('SELECT last_value FROM inflations');
        expect(Number(drawn.last_value)).toBe(2);
      } finally {
        await api.db.dataSource.query(
          'DROP TRIGGER inflate_shard ON project_quotas; DROP FUNCTION inflate_shard(); DROP SEQUENCE inflations;',
        );
      }
    },
  );

  it('frees a slot when a webhook is deleted at the limit', async () => {
    const first = (await create(0)).body as { id: string };
    await fill(LIMIT - 1);
    expect((await create(1)).status).toBe(409);
    expect((await api.http.delete(`/v1/webhooks/${first.id}`, { key })).status).toBe(200);
    expect((await shards()).reduce((a, b) => a + b, 0)).toBe(LIMIT - 1);
    expect((await create(2)).status).toBe(201);
    expect((await create(3)).status).toBe(409);
  });

  // A create in flight holds one shard of the counter until it commits. Deletes take a free shard to give their
  // slot back, so they neither queue behind every create in flight nor one behind the other (a burst of deletes
  // of one big project used to run them one at a time, until requests timed out waiting for a connection).
  it('deletes give their slots back while creates in flight hold a shard of the counter', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(((await create(i)).body as { id: string }).id);
    await fill(2 * SHARDS);
    const before = (await shards()).reduce((a, b) => a + b, 0);
    const inFlight = api.db.dataSource.createQueryRunner();
    await inFlight.connect();
    await inFlight.startTransaction();
    try {
      await inFlight.query('SELECT 1 FROM project_quotas WHERE project_id = $1 AND shard = 0 FOR UPDATE', [
        projectId,
      ]);
      const deleted = await Promise.all(ids.map((id) => api.http.delete(`/v1/webhooks/${id}`, { key })));
      expect(deleted.map((r) => r.status)).toEqual(Array(10).fill(200));
    } finally {
      await inFlight.rollbackTransaction();
      await inFlight.release();
    }
    expect((await shards()).reduce((a, b) => a + b, 0)).toBe(before - 10);
    expect(await liveCount()).toBe(0);
    expect(Math.min(...(await shards()))).toBeGreaterThanOrEqual(0);
  });

  it('a project default policy set while sharded creates race reaches every new webhook', async () => {
    for (let round = 0; round < 5; round++) {
      const k = (await api.newKey()).key;
      expect((await create(0, k)).status).toBe(201);
      const [policy, ...created] = await Promise.all([
        api.http.put('/v1/rotation-policy', { key: k, body: { interval_days: 7 } }),
        ...Array.from({ length: 8 }, (_, i) => create(i + 1, k)),
      ]);
      expect(policy.status).toBe(200);
      for (const res of [...created]) {
        expect(res.status).toBe(201);
        const status = await api.http.get(`/v1/webhooks/${res.body.id}/secret-status`, { key: k });
        expect(status.body.next_rotation_at).not.toBeNull();
      }
    }
  });
});
