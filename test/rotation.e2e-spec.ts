import { randomUUID } from 'node:crypto';
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { fingerprint, ManualClock, RotationSweepService, SecretsService } from '@app/domain';
import { Database, RotationRepository, type QueryRunner } from '@app/persistence';
import { JobName, QueueName } from '@app/queue';
import { RotationProcessor } from '../apps/worker/src/rotation/rotation.processor';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { seedDueWebhooks } from './support/rotation-seed';
import { startWorker, stopWhileHeld, type RunningWorker } from './support/worker-harness';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const POLICY_FIELDS = [
  'created_at',
  'grace_period_hours',
  'interval_days',
  'last_rotated_at',
  'next_rotation_at',
  'updated_at',
  'webhook_id',
].sort();
// The recurring sweep stays out of the way: tests drive sweeps themselves, time comes from the manual clock.
const WORKER_ENV = { ROTATION_SWEEP_EVERY_MS: '86400000', ROTATION_NOTICE_HOURS: '24' };

describe('scheduled rotation', () => {
  const clock = new ManualClock(new Date('2026-06-01T00:00:00.000Z'));
  let api: RunningApi;
  let worker: RunningWorker;
  let sweeper: RotationSweepService;
  let key: string;

  beforeAll(async () => {
    api = await startApi({ clock });
    worker = await startWorker({ clock, env: WORKER_ENV });
    sweeper = worker.get(RotationSweepService);
  });
  afterAll(async () => {
    await worker.close();
    await api.close();
  });
  beforeEach(async () => {
    ({ key } = await api.newKey());
  });

  const valid = { url: 'https://hooks.example.com/anchor', subscribed_events: ['task.completed'] };
  const createWebhook = async (k = key) => {
    const res = await api.http.post('/v1/webhooks', { key: k, body: valid });
    expect(res.status).toBe(201);
    return res.body as { id: string; secret: string; updated_at: string; project_id: string };
  };
  const status = async (id: string, k = key) => {
    const res = await api.http.get(`/v1/webhooks/${id}/secret-status`, { key: k });
    expect(res.status).toBe(200);
    return res.body;
  };
  const audits = (webhookId: string, type: string): Promise<{ event: any }[]> =>
    api.db.dataSource.query(
      'SELECT event FROM audit_events WHERE webhook_id = $1 AND type = $2 ORDER BY seq',
      [webhookId, type],
    );
  const projectOf = (wh: { project_id?: string }) => wh.project_id;
  const signing = (id: string) => api.app.get(SecretsService).signingSecrets(api.db.repos, id, clock.now());
  /** Rotates the webhook `times` times by hand, each previous secret kept for a week; the new secrets in order. */
  const rotateKeepingAWeek = async (webhookId: string, times: number): Promise<string[]> => {
    const issued: string[] = [];
    for (let i = 0; i < times; i++) {
      const res = await api.http.post(`/v1/webhooks/${webhookId}/rotate-secret`, {
        key,
        body: { grace_period_hours: 168 },
      });
      expect(res.status).toBe(200);
      issued.push(res.body.secret);
    }
    return issued;
  };
  /**
   * The webhook's only `previous_expired` event: `secret`, expired at `at` by the sweep's rotation `rotated`, dated
   * like it and recorded right after it.
   */
  const expectOneExpiryBySweep = async (
    webhookId: string,
    rotated: { event: any },
    secret: string,
    at: Date,
  ): Promise<void> => {
    const expired = await audits(webhookId, 'webhook.secret.previous_expired');
    expect(expired.map((e) => e.event)).toEqual([
      expect.objectContaining({
        occurred_at: rotated.event.occurred_at,
        actor: { type: 'scheduler', id: 'rotation.sweep' },
        data: { fingerprint: fingerprint(secret), expired_at: at.toISOString() },
      }),
    ]);
    expect(expired[0].event.id > rotated.event.id).toBe(true);
  };

  /**
   * Holds a row lock (`lockSql`) from a transaction of its own while it starts each request in turn, each only
   * once the previous one waits for a lock or has answered, so the requests queue in that order; then releases
   * it and returns their answers.
   */
  async function inOrderBehindLock(
    lockSql: string,
    params: unknown[],
    requests: (() => Promise<{ status: number; body: any }>)[],
    beforeRelease: (holder: QueryRunner) => Promise<void> = async () => undefined,
  ): Promise<{ status: number; body: any }[]> {
    const holder = api.db.dataSource.createQueryRunner();
    await holder.connect();
    try {
      await holder.startTransaction();
      await holder.query(lockSql, params);
      const started: Promise<{ status: number; body: any }>[] = [];
      for (const request of requests) {
        let settled = false;
        const answer = request().finally(() => {
          settled = true;
        });
        started.push(answer);
        const waitersBefore = started.length - 1;
        await eventually(
          async () => {
            if (settled) return true;
            // Asked outside the holder's transaction, which would keep seeing its first snapshot of the view.
            const [row] = await api.db.dataSource.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            );
            return row.n > waitersBefore;
          },
          10_000,
          'the request to wait for the lock or to answer',
        );
      }
      await beforeRelease(holder);
      await holder.commitTransaction();
      return await Promise.all(started);
    } finally {
      if (holder.isTransactionActive) await holder.rollbackTransaction();
      await holder.release();
    }
  }
  it('answers secret-status racing a delete with 200 or 404, never 500', async () => {
    const seen = new Set<number>();
    for (let round = 0; round < 8; round++) {
      const wh = await createWebhook();
      const requests = [
        api.http.delete(`/v1/webhooks/${wh.id}`, { key }),
        ...Array.from({ length: 12 }, () => api.http.get(`/v1/webhooks/${wh.id}/secret-status`, { key })),
      ];
      const [deleted, ...statuses] = await Promise.all(requests);
      expect(deleted.status).toBe(200);
      for (const r of statuses) {
        seen.add(r.status);
        if (r.status === 404) expect(r.body.code).toBe('webhook_not_found');
      }
    }
    expect([...seen].filter((s) => s !== 200 && s !== 404)).toEqual([]);
  });

  describe('a project default set while webhooks are being created', () => {
    it('reaches every webhook, whichever commits first', async () => {
      for (let round = 0; round < 5; round++) {
        const { key: k } = await api.newKey();
        const [policy, ...created] = await Promise.all([
          api.http.put('/v1/rotation-policy', { key: k, body: { interval_days: 7 } }),
          ...Array.from({ length: 4 }, () => api.http.post('/v1/webhooks', { key: k, body: valid })),
        ]);
        expect(policy.status).toBe(200);
        for (const res of created) {
          expect(res.status).toBe(201);
          expect((await status(res.body.id, k)).next_rotation_at).not.toBeNull();
        }
      }
    });
  });

  describe('policy changes racing other changes of the same webhooks', () => {
    const scheduleOf = async (id: string) =>
      (
        await api.db.dataSource.query(
          'SELECT scope, interval_days, next_rotation_at FROM rotation_schedules WHERE webhook_id = $1',
          [id],
        )
      ).map((r: { scope: string; interval_days: number; next_rotation_at: Date }) => ({
        scope: r.scope,
        interval_days: r.interval_days,
        next_rotation_at: new Date(r.next_rotation_at).toISOString(),
      }));

    it("a webhook's own policy set just before the default changes keeps overriding it", async () => {
      const wh = await createWebhook();
      const setAt = clock.now().getTime();
      const answers = await inOrderBehindLock(
        'SELECT 1 FROM webhooks WHERE id = $1 FOR UPDATE',
        [wh.id],
        [
          () => api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 30 } }),
          () => api.http.put('/v1/rotation-policy', { key, body: { interval_days: 2 } }),
        ],
      );
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      const own = new Date(setAt + 30 * DAY).toISOString();
      expect(await scheduleOf(wh.id)).toEqual([
        { scope: 'webhook', interval_days: 30, next_rotation_at: own },
      ]);
      expect((await status(wh.id)).next_rotation_at).toBe(own);
    });

    it("a webhook's own policy removed while the default is set falls back to the new default", async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 30 } });
      const setAt = clock.now().getTime();
      // The removal holds the webhook's lock and has read that there is no default when it waits here.
      const answers = await inOrderBehindLock(
        'SELECT 1 FROM rotation_schedules WHERE webhook_id = $1 FOR UPDATE',
        [wh.id],
        [
          () => api.http.delete(`/v1/webhooks/${wh.id}/rotation-policy`, { key }),
          () => api.http.put('/v1/rotation-policy', { key, body: { interval_days: 2 } }),
        ],
      );
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      const byDefault = new Date(setAt + 2 * DAY).toISOString();
      expect(await scheduleOf(wh.id)).toEqual([
        { scope: 'project', interval_days: 2, next_rotation_at: byDefault },
      ]);
    });

    it("a webhook's own policy removed while the default is removed leaves no schedule", async () => {
      const wh = await createWebhook();
      await api.http.put('/v1/rotation-policy', { key, body: { interval_days: 2 } });
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 30 } });
      // The removal holds the webhook's lock and has read the default it falls back to when it waits here.
      const answers = await inOrderBehindLock(
        'SELECT 1 FROM rotation_schedules WHERE webhook_id = $1 FOR UPDATE',
        [wh.id],
        [
          () => api.http.delete(`/v1/webhooks/${wh.id}/rotation-policy`, { key }),
          () => api.http.delete('/v1/rotation-policy', { key }),
        ],
      );
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      expect(await scheduleOf(wh.id)).toEqual([]);
      expect((await status(wh.id)).next_rotation_at).toBeNull();
    });

    it('a rotation that waited over a second for the lock is dated after the change that held it', async () => {
      const wh = await createWebhook();
      // The change that holds the lock is dated 1.2 s after the time the rotation reads before it waits (another
      // replica's clock, or the time that change read once it held the lock), and commits once the rotation has
      // waited over 0.2 s, by the database's clock (the one the rotation measures its wait with): that change is
      // then in its past.
      const changedAt = new Date(clock.now().getTime() + 1200);
      const [rotation] = await inOrderBehindLock(
        'SELECT 1 FROM webhooks WHERE id = $1 FOR UPDATE',
        [wh.id],
        [() => api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key })],
        async (holder) => {
          await holder.query('UPDATE webhooks SET updated_at = $2 WHERE id = $1', [wh.id, changedAt]);
          await eventually(
            async () => {
              const [waited] = await api.db.dataSource.query(
                `SELECT bool_or(clock_timestamp() - query_start > interval '200 milliseconds') AS long
                   FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'
                    AND query LIKE 'SELECT * FROM rotate_webhook_secret(%'`,
              );
              return waited.long === true;
            },
            10_000,
            'the rotation to wait over 0.2 s for the lock',
          );
        },
      );
      expect(rotation.status).toBe(200);
      const after = new Date(changedAt.getTime() + 1).toISOString();
      expect(rotation.body.updated_at).toBe(after);
      const [event] = await audits(wh.id, 'webhook.secret.rotated');
      expect(event.event.occurred_at).toBe(after);
      expect((await status(wh.id)).current.created_at).toBe(after);
    });

    it('a default changed just after a rotation schedules from the new secret', async () => {
      await api.http.put('/v1/rotation-policy', { key, body: { interval_days: 10 } });
      const wh = await createWebhook();
      clock.advance(3 * DAY);
      const rotatedAt = clock.now().getTime();
      const answers = await inOrderBehindLock(
        'SELECT 1 FROM webhooks WHERE id = $1 FOR UPDATE',
        [wh.id],
        [
          () => api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key }),
          () => api.http.put('/v1/rotation-policy', { key, body: { interval_days: 5 } }),
        ],
      );
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      const next = new Date(rotatedAt + 5 * DAY).toISOString();
      expect(await scheduleOf(wh.id)).toEqual([
        { scope: 'project', interval_days: 5, next_rotation_at: next },
      ]);
    });
  });

  describe('policy routes', () => {
    it('sets, reads and removes a webhook policy; next rotation = creation + interval', async () => {
      const wh = await createWebhook();
      clock.advance(1000);
      const put = await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, {
        key,
        body: { interval_days: 30 },
      });
      expect(put.status).toBe(200);
      expect(Object.keys(put.body).sort()).toEqual(POLICY_FIELDS);
      expect(put.body).toMatchObject({
        webhook_id: wh.id,
        interval_days: 30,
        grace_period_hours: 24,
        last_rotated_at: null,
        next_rotation_at: new Date(clock.now().getTime() + 30 * DAY).toISOString(),
      });
      expect(put.body.created_at).toMatch(ISO_MS);
      expect(put.body.updated_at).toBe(put.body.created_at);

      clock.advance(1000);
      const replaced = await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, {
        key,
        body: { interval_days: 7, grace_period_hours: 2 },
      });
      expect(replaced.status).toBe(200);
      // The policy's creation still anchors the clock; only the interval changed.
      expect(replaced.body.created_at).toBe(put.body.created_at);
      expect(replaced.body.updated_at).not.toBe(put.body.updated_at);
      expect(replaced.body.next_rotation_at).toBe(
        new Date(new Date(put.body.created_at).getTime() + 7 * DAY).toISOString(),
      );
      const got = await api.http.get(`/v1/webhooks/${wh.id}/rotation-policy`, { key });
      expect(got.status).toBe(200);
      expect(got.body).toEqual(replaced.body);
      expect((await status(wh.id)).next_rotation_at).toBe(replaced.body.next_rotation_at);

      const del = await api.http.delete(`/v1/webhooks/${wh.id}/rotation-policy`, { key });
      expect(del.status).toBe(200);
      expect(del.body).toEqual({ ok: true });
      const gone = await api.http.get(`/v1/webhooks/${wh.id}/rotation-policy`, { key });
      expect(gone.status).toBe(404);
      expect(gone.body.code).toBe('not_found');
      expect((await api.http.delete(`/v1/webhooks/${wh.id}/rotation-policy`, { key })).body.code).toBe(
        'not_found',
      );
      expect((await status(wh.id)).next_rotation_at).toBeNull();
      expect(await audits(wh.id, 'webhook.rotation_policy.set')).toHaveLength(2);
      const [removed] = await audits(wh.id, 'webhook.rotation_policy.removed');
      expect(removed.event.data).toEqual({ scope: 'webhook' });
    });

    it("records the removal of a webhook's own policy when the webhook is deleted, and none without one", async () => {
      const withPolicy = await createWebhook();
      const without = await createWebhook();
      const put = await api.http.put(`/v1/webhooks/${withPolicy.id}/rotation-policy`, {
        key,
        body: { interval_days: 30 },
      });
      expect(put.status).toBe(200);
      for (const { id } of [withPolicy, without])
        expect((await api.http.delete(`/v1/webhooks/${id}`, { key })).status).toBe(200);
      const events: { event: any }[] = await api.db.dataSource.query(
        'SELECT event FROM audit_events WHERE webhook_id = ANY($1) ORDER BY seq',
        [[withPolicy.id, without.id]],
      );
      const after = (id: string) =>
        events.map((e) => e.event).filter((e) => e.webhook_id === id && e.type !== 'webhook.created');
      const [removed, deleted] = after(withPolicy.id).filter((e) => e.type !== 'webhook.rotation_policy.set');
      expect(removed).toMatchObject({ type: 'webhook.rotation_policy.removed', data: { scope: 'webhook' } });
      expect(deleted.type).toBe('webhook.deleted');
      // The same change: one actor, one request, one time.
      expect(removed.actor).toEqual(deleted.actor);
      expect(removed.request_id).toBe(deleted.request_id);
      expect(removed.occurred_at).toBe(deleted.occurred_at);
      expect(after(without.id).map((e) => e.type)).toEqual(['webhook.deleted']);
    });

    it.each([
      [{}, 'interval_days', 'required'],
      [{ interval_days: 0 }, 'interval_days', 'min'],
      [{ interval_days: 366 }, 'interval_days', 'max'],
      [{ interval_days: 1.5 }, 'interval_days', 'type'],
      [{ interval_days: '30' }, 'interval_days', 'type'],
      [{ interval_days: 30, grace_period_hours: 169 }, 'grace_period_hours', 'max'],
      [{ interval_days: 30, grace_period_hours: -1 }, 'grace_period_hours', 'min'],
      [{ interval_days: 30, grace_period_hours: null }, 'grace_period_hours', 'type'],
      [{ interval_days: 30, grace_hours: 2 }, 'grace_hours', 'unknown_field'],
    ])('refuses %j', async (body, field, rule) => {
      const wh = await createWebhook();
      for (const path of [`/v1/webhooks/${wh.id}/rotation-policy`, '/v1/rotation-policy']) {
        const res = await api.http.put(path, { key, body });
        expect(res.status).toBe(400);
        expect(res.body.code).toBe('validation_failed');
        expect(res.body.details).toEqual([expect.objectContaining({ field, rule })]);
      }
    });

    it('accepts the bounds', async () => {
      const wh = await createWebhook();
      for (const body of [
        { interval_days: 1, grace_period_hours: 0 },
        { interval_days: 365, grace_period_hours: 168 },
      ]) {
        expect((await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body })).status).toBe(200);
        expect((await api.http.put('/v1/rotation-policy', { key, body })).status).toBe(200);
      }
    });

    it('answers a webhook of another project exactly like a missing one, on every route', async () => {
      const wh = await createWebhook();
      const other = await api.newKey();
      const routes: [string, string, unknown?][] = [
        ['PUT', `/v1/webhooks/${wh.id}/rotation-policy`, { interval_days: 3 }],
        ['GET', `/v1/webhooks/${wh.id}/rotation-policy`],
        ['DELETE', `/v1/webhooks/${wh.id}/rotation-policy`],
        ['POST', `/v1/webhooks/${wh.id}/secret/claim`],
        ['GET', `/v1/webhooks/${wh.id}/secret-status`],
        ['DELETE', `/v1/webhooks/${wh.id}/previous-secrets`],
      ];
      for (const [method, path, body] of routes) {
        const foreign = await api.http.request(method, path, { key: other.key, body });
        const missing = await api.http.request(method, path.replace(wh.id, 'wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P'), {
          key,
          body,
        });
        expect([foreign.status, foreign.body.code]).toEqual([404, 'webhook_not_found']);
        expect([missing.status, missing.body.code]).toEqual([404, 'webhook_not_found']);
        expect((await api.http.request(method, path, { body })).status).toBe(401);
      }
      // The other project's default is its own business.
      await api.http.put('/v1/rotation-policy', { key, body: { interval_days: 5 } });
      expect((await api.http.get('/v1/rotation-policy', { key: other.key })).status).toBe(404);
      expect((await status(wh.id)).next_rotation_at).not.toBeNull();
    });

    it('project default: applies to existing and new webhooks; an own policy overrides it; removal stops it', async () => {
      const before = await createWebhook();
      expect((await api.http.get('/v1/rotation-policy', { key })).body.code).toBe('not_found');
      const setAt = clock.now().getTime();
      const put = await api.http.put('/v1/rotation-policy', { key, body: { interval_days: 10 } });
      expect(put.status).toBe(200);
      expect(put.body.webhook_id).toBeNull();
      expect(put.body.next_rotation_at).toBe(new Date(setAt + 10 * DAY).toISOString());
      expect((await status(before.id)).next_rotation_at).toBe(new Date(setAt + 10 * DAY).toISOString());

      clock.advance(HOUR);
      const after = await createWebhook();
      expect((await status(after.id)).next_rotation_at).toBe(new Date(setAt + HOUR + 10 * DAY).toISOString());
      // A webhook's own policy has no GET of its own while only the default applies.
      expect((await api.http.get(`/v1/webhooks/${after.id}/rotation-policy`, { key })).status).toBe(404);

      await api.http.put(`/v1/webhooks/${after.id}/rotation-policy`, { key, body: { interval_days: 2 } });
      expect((await status(after.id)).next_rotation_at).toBe(new Date(setAt + HOUR + 2 * DAY).toISOString());
      await api.http.delete(`/v1/webhooks/${after.id}/rotation-policy`, { key });
      expect((await status(after.id)).next_rotation_at).toBe(new Date(setAt + HOUR + 10 * DAY).toISOString());

      const del = await api.http.delete('/v1/rotation-policy', { key });
      expect(del.body).toEqual({ ok: true });
      expect((await status(before.id)).next_rotation_at).toBeNull();
      expect((await status(after.id)).next_rotation_at).toBeNull();
      expect((await api.http.get('/v1/rotation-policy', { key })).body.code).toBe('not_found');
      expect((await api.http.delete('/v1/rotation-policy', { key })).body.code).toBe('not_found');
      // Removed means no rotation, however long we wait.
      clock.advance(30 * DAY);
      await sweeper.sweep();
      for (const wh of [before, after]) expect(await audits(wh.id, 'webhook.secret.rotated')).toHaveLength(0);
    });

    it('project default: next_rotation_at is when a new webhook would rotate while none follows it', async () => {
      const setAt = clock.now().getTime();
      const put = await api.http.put('/v1/rotation-policy', { key, body: { interval_days: 10 } });
      expect(put.status).toBe(200);
      expect(put.body.next_rotation_at).toBe(new Date(setAt + 10 * DAY).toISOString());
      expect(put.body.last_rotated_at).toBeNull();

      clock.advance(HOUR);
      const got = await api.http.get('/v1/rotation-policy', { key });
      expect(got.body.next_rotation_at).toBe(new Date(setAt + HOUR + 10 * DAY).toISOString());

      // Once a webhook follows it: that webhook's next rotation, which a later one never precedes.
      const wh = await createWebhook();
      clock.advance(HOUR);
      expect((await api.http.get('/v1/rotation-policy', { key })).body.next_rotation_at).toBe(
        (await status(wh.id)).next_rotation_at,
      );
      expect((await status(wh.id)).next_rotation_at).toBe(new Date(setAt + HOUR + 10 * DAY).toISOString());

      // Its own policy takes it away from the default: back to a new webhook's first rotation.
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 2 } });
      expect((await api.http.get('/v1/rotation-policy', { key })).body.next_rotation_at).toBe(
        new Date(setAt + 2 * HOUR + 10 * DAY).toISOString(),
      );
    });
  });

  describe('the sweep', () => {
    it('rotates a due webhook once; the secret is unclaimed until claimed, exactly once', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, {
        key,
        body: { interval_days: 1, grace_period_hours: 2 },
      });
      clock.advance(DAY - 1);
      await sweeper.sweep();
      expect((await status(wh.id)).current.trigger).toBe('created');

      clock.advance(1);
      const rotatedAt = clock.now();
      await sweeper.sweep();
      await sweeper.sweep();
      const st = await status(wh.id);
      expect(Object.keys(st).sort()).toEqual(['current', 'next_rotation_at', 'previous']);
      expect(Object.keys(st.current).sort()).toEqual(['claimed', 'created_at', 'fingerprint', 'trigger']);
      expect(st.current).toMatchObject({
        trigger: 'scheduled',
        claimed: false,
        created_at: rotatedAt.toISOString(),
      });
      expect(st.previous).toEqual([
        {
          created_at: expect.stringMatching(ISO_MS),
          expires_at: new Date(rotatedAt.getTime() + 2 * HOUR).toISOString(),
          fingerprint: fingerprint(wh.secret),
        },
      ]);
      expect(st.next_rotation_at).toBe(new Date(rotatedAt.getTime() + DAY).toISOString());
      const policy = await api.http.get(`/v1/webhooks/${wh.id}/rotation-policy`, { key });
      expect(policy.body.last_rotated_at).toBe(rotatedAt.toISOString());

      const [rotated, ...more] = await audits(wh.id, 'webhook.secret.rotated');
      expect(more).toHaveLength(0);
      expect(rotated.event.actor.type).toBe('scheduler');
      expect(rotated.event.data).toMatchObject({
        trigger: 'scheduled',
        fingerprint: st.current.fingerprint,
        previous_fingerprint: fingerprint(wh.secret),
        previous_expires_at: new Date(rotatedAt.getTime() + 2 * HOUR).toISOString(),
      });

      const claim = await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key });
      expect(claim.status).toBe(200);
      expect(claim.body.id).toBe(wh.id);
      expect(claim.body.secret).toMatch(/^[0-9a-f]{64}$/);
      expect(fingerprint(claim.body.secret)).toBe(st.current.fingerprint);
      const again = await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('no_unclaimed_secret');
      expect((await status(wh.id)).current.claimed).toBe(true);
      const claimed = await audits(wh.id, 'webhook.secret.claimed');
      expect(claimed.map((a) => a.event.data)).toEqual([{ fingerprint: st.current.fingerprint }]);
      expect(JSON.stringify(await audits(wh.id, 'webhook.secret.claimed'))).not.toContain(claim.body.secret);

      // Both secrets sign during the grace period, the old one until exactly its expiry.
      expect(await signing(wh.id)).toEqual([claim.body.secret, wh.secret]);
      clock.set(rotatedAt.getTime() + 2 * HOUR - 1);
      expect(await signing(wh.id)).toEqual([claim.body.secret, wh.secret]);
      expect((await status(wh.id)).previous).toHaveLength(1);
      clock.set(rotatedAt.getTime() + 2 * HOUR);
      expect(await signing(wh.id)).toEqual([claim.body.secret]);
      expect((await status(wh.id)).previous).toEqual([]);
    });

    it('a claim retried with its Idempotency-Key gets the secret again: a lost answer does not lose the secret', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      clock.advance(DAY);
      await sweeper.sweep();
      const st = await status(wh.id);
      expect(st.current).toMatchObject({ trigger: 'scheduled', claimed: false });

      const headers = { 'idempotency-key': `claim-${wh.id}` };
      const first = await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key, headers });
      expect(first.status).toBe(200);
      expect(fingerprint(first.body.secret)).toBe(st.current.fingerprint);
      // The claim committed with its answer; the client never saw it (process killed, connection dropped) and
      // retries with the same key: the answer again, not 409 no_unclaimed_secret.
      const retry = await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key, headers });
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.body).toEqual(first.body);
      // Still claimed once: one audit event, and a claim without the key is refused.
      expect(await audits(wh.id, 'webhook.secret.claimed')).toHaveLength(1);
      const other = await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key });
      expect(other.status).toBe(409);
      expect(other.body.code).toBe('no_unclaimed_secret');
    });

    it("never moves a webhook's updated_at backwards, nor dates a claim before the rotation", async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      clock.advance(DAY);
      const sweptAt = clock.now();
      // A change committed by a replica whose clock is 10 ms ahead, after this sweep read its clock.
      const ahead = new Date(sweptAt.getTime() + 10);
      await api.db.dataSource.query('UPDATE webhooks SET updated_at = $2 WHERE id = $1', [wh.id, ahead]);
      await sweeper.sweep();
      const after = (await api.http.get(`/v1/webhooks/${wh.id}`, { key })).body;
      expect(after.updated_at).toBe(new Date(ahead.getTime() + 1).toISOString());
      expect((await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key })).status).toBe(200);
      const [claimed] = await audits(wh.id, 'webhook.secret.claimed');
      expect(claimed.event.occurred_at).toBe(new Date(ahead.getTime() + 2).toISOString());
      const [rotated] = await audits(wh.id, 'webhook.secret.rotated');
      expect(rotated.event.occurred_at).toBe(after.updated_at);
    });

    it('dates every change after the ones that committed before it, from clocks a little behind them', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      clock.advance(DAY);
      await sweeper.sweep();
      clock.advance(10);
      const claimedAt = clock.now().getTime();
      expect((await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key })).status).toBe(200);
      // Each next change comes from a replica whose clock is a few ms behind the change before it: it follows it.
      clock.set(claimedAt - 5);
      const rotated = await api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key });
      expect(rotated.status).toBe(200);
      expect(rotated.body.updated_at).toBe(new Date(claimedAt + 1).toISOString());
      clock.set(claimedAt + 20);
      // The create's secret (previous since the sweep) and the claimed one (previous since the rotation).
      expect((await api.http.delete(`/v1/webhooks/${wh.id}/previous-secrets`, { key })).body.revoked).toBe(2);
      clock.set(claimedAt + 15);
      const policy = await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, {
        key,
        body: { interval_days: 2 },
      });
      expect(policy.status).toBe(200);
      clock.set(claimedAt + 16);
      const patched = await api.http.patch(`/v1/webhooks/${wh.id}`, { key, body: { description: 'later' } });
      expect(patched.body.updated_at).toBe(new Date(claimedAt + 22).toISOString());

      const history: { type: string; occurred_at: Date }[] = await api.db.dataSource.query(
        'SELECT type, occurred_at FROM audit_events WHERE webhook_id = $1 ORDER BY seq',
        [wh.id],
      );
      expect(history.slice(-5).map((e) => [e.type, e.occurred_at.getTime() - claimedAt])).toEqual([
        ['webhook.secret.claimed', 0],
        ['webhook.secret.rotated', 1],
        ['webhook.secret.previous_revoked', 20],
        ['webhook.rotation_policy.set', 21],
        ['webhook.updated', 22],
      ]);
      const times = history.map((e) => e.occurred_at.getTime());
      expect(times).toEqual([...times].sort((a, b) => a - b));
    });

    it('follows the last change within the second even when the other time is far ahead (a bad clock)', async () => {
      const wh = await createWebhook();
      const now = clock.now().getTime();
      // A replica with a clock 5 s ahead wrote updated_at; a claim 20 ms ahead wrote last_change_at.
      await api.db.dataSource.query(
        'UPDATE webhooks SET updated_at = $2, last_change_at = $3 WHERE id = $1',
        [wh.id, new Date(now + 5000), new Date(now + 20)],
      );
      const rotated = await api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key });
      expect(rotated.body.updated_at).toBe(new Date(now + 21).toISOString());
      // The same rule in the API's own changes.
      await api.db.dataSource.query(
        'UPDATE webhooks SET updated_at = $2, last_change_at = $3 WHERE id = $1',
        [wh.id, new Date(now + 30), new Date(now + 5000)],
      );
      const patched = await api.http.patch(`/v1/webhooks/${wh.id}`, { key, body: { description: 'x' } });
      expect(patched.body.updated_at).toBe(new Date(now + 31).toISOString());
    });

    it('signs with the current secret first when the secret it replaced was dated ahead by a bad clock', async () => {
      const wh = await createWebhook();
      const now = clock.now().getTime();
      // A replica with a clock 5 s ahead rotates; one on time rotates a moment later and does not follow a time
      // that far ahead: the secret it replaced is dated after the new current one.
      clock.set(now + 5000);
      const ahead = await api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key });
      clock.set(now + 1000);
      const onTime = await api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key });
      expect((await status(wh.id)).current.created_at).toBe(new Date(now + 1000).toISOString());
      const newestFirst = [onTime.body.secret, ahead.body.secret, wh.secret];
      expect(await signing(wh.id)).toEqual(newestFirst);
      // The batched read deliveries are signed with.
      const batched = await api.app.get(SecretsService).signingSecretsOf(api.db.repos, [wh.id], clock.now());
      expect(batched.get(wh.id)).toEqual(newestFirst);
      clock.set(now + 5000);
    });

    it('dates a scheduled rotation after a claim that committed before the sweep, from a clock behind it', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      clock.advance(DAY);
      await sweeper.sweep();
      // The next rotation is due a day later; a claim commits 10 ms after that, and a worker whose clock is 5 ms
      // behind the claim's sweeps.
      clock.advance(DAY + 10);
      const claimedAt = clock.now().getTime();
      expect((await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key })).status).toBe(200);
      clock.set(claimedAt - 5);
      await sweeper.sweep();
      const [, second] = await audits(wh.id, 'webhook.secret.rotated');
      const datedAt = new Date(claimedAt + 1).toISOString();
      expect(second.event.occurred_at).toBe(datedAt);
      expect((await api.http.get(`/v1/webhooks/${wh.id}`, { key })).body.updated_at).toBe(datedAt);
      expect((await status(wh.id)).current.created_at).toBe(datedAt);
      // Durations still run from the sweep's own time: the grace period and the next rotation.
      expect(second.event.data.previous_expires_at).toBe(new Date(claimedAt - 5 + 24 * HOUR).toISOString());
      expect((await status(wh.id)).next_rotation_at).toBe(new Date(claimedAt - 5 + DAY).toISOString());
    });

    it('housekeeping destroys a previous secret once expired and records it', async () => {
      const wh = await createWebhook();
      await api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key, body: { grace_period_hours: 1 } });
      const expiresAt = clock.now().getTime() + HOUR;
      // Batch after batch until none is left, as housekeeping does: secrets other tests left behind may be due too.
      const expire = async () => {
        while ((await worker.get(SecretsService).expireDue(worker.get(Database), clock.now(), 500)) > 0);
      };
      clock.set(expiresAt - 1);
      await expire();
      const count = async () =>
        (
          await api.db.dataSource.query(
            "SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1 AND state = 'previous'",
            [wh.id],
          )
        )[0].n;
      expect(await count()).toBe(1);
      clock.set(expiresAt);
      await expire();
      expect(await count()).toBe(0);
      const expired = await audits(wh.id, 'webhook.secret.previous_expired');
      expect(expired.map((e) => e.event.data)).toEqual([
        { fingerprint: fingerprint(wh.secret), expired_at: new Date(expiresAt).toISOString() },
      ]);
      expect(expired[0].event.project_id).toBe(projectOf(wh));
    });

    it('the worker runs rotation.sweep and secret.rotate jobs from its queue', async () => {
      const wh = await createWebhook();
      const other = await createWebhook();
      for (const id of [wh.id, other.id]) {
        await api.http.put(`/v1/webhooks/${id}/rotation-policy`, { key, body: { interval_days: 1 } });
      }
      const due = new Date(clock.now().getTime() + DAY);
      clock.set(due);
      const queue = worker.get<Queue>(getQueueToken(QueueName.Rotation) as never);
      const dueAt = due.toISOString();
      await queue.add(
        JobName.SecretRotate,
        { webhookId: other.id, dueAt },
        { jobId: `rotate-${other.id}-${due.getTime()}` },
      );
      await queue.add(JobName.RotationSweep, {}, { jobId: `sweep-test-${Date.now()}` });
      await eventually(
        async () =>
          (await status(wh.id)).current.trigger === 'scheduled' &&
          (await status(other.id)).current.trigger === 'scheduled',
        15_000,
        'the worker to rotate the due webhooks',
      );
      expect(await audits(wh.id, 'webhook.secret.rotated')).toHaveLength(1);
      expect(await audits(other.id, 'webhook.secret.rotated')).toHaveLength(1);
    });

    it('a claim with nothing scheduled is 409', async () => {
      const wh = await createWebhook();
      const res = await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key });
      expect([res.status, res.body.code]).toEqual([409, 'no_unclaimed_secret']);
    });

    /** A webhook on a 3-day policy whose scheduled rotation has run: its current secret is unclaimed. */
    const withUnclaimedScheduledSecret = async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 3 } });
      clock.advance(3 * DAY);
      await sweeper.sweep();
      const scheduled = (await status(wh.id)).current;
      expect(scheduled.claimed).toBe(false);
      return { wh, scheduled };
    };

    it('a manual rotation supersedes an unclaimed secret and restarts the clock', async () => {
      const { wh, scheduled } = await withUnclaimedScheduledSecret();

      clock.advance(HOUR);
      const manual = await api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key });
      expect(manual.status).toBe(200);
      const st = await status(wh.id);
      expect(st.current).toMatchObject({
        trigger: 'manual',
        claimed: true,
        fingerprint: fingerprint(manual.body.secret),
      });
      // The unclaimed secret is gone (nobody can hold it); the original one still signs for its grace.
      expect(st.previous.map((p: { fingerprint: string }) => p.fingerprint)).toEqual([
        fingerprint(wh.secret),
      ]);
      expect(st.next_rotation_at).toBe(new Date(clock.now().getTime() + 3 * DAY).toISOString());
      expect((await api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key })).status).toBe(409);
      const rotations = await audits(wh.id, 'webhook.secret.rotated');
      expect(rotations.map((r) => r.event.data.trigger)).toEqual(['scheduled', 'manual']);
      expect(rotations[1].event.data.superseded_unclaimed_fingerprint).toBe(scheduled.fingerprint);
    });

    it('a manual rotation that waited behind a claim keeps the claimed secret signing', async () => {
      const { wh, scheduled } = await withUnclaimedScheduledSecret();

      // Another transaction holds the webhook's row lock, as a claim does, and claims the secret only once the
      // rotation is waiting for that lock: the rotation must decide on the secret as claimed, not as it was
      // when it started.
      const [manual] = await inOrderBehindLock(
        'SELECT 1 FROM webhooks WHERE id = $1 FOR UPDATE',
        [wh.id],
        [
          () =>
            api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key, body: { grace_period_hours: 5 } }),
        ],
        (holder) =>
          holder.query(
            "UPDATE webhook_secrets SET claimed = true WHERE webhook_id = $1 AND state = 'current'",
            [wh.id],
          ),
      );
      expect(manual.status).toBe(200);

      const expiresAt = new Date(clock.now().getTime() + 5 * HOUR).toISOString();
      const st = await status(wh.id);
      expect(st.current.fingerprint).toBe(fingerprint(manual.body.secret));
      expect(st.previous).toEqual(
        expect.arrayContaining([
          { created_at: scheduled.created_at, expires_at: expiresAt, fingerprint: scheduled.fingerprint },
        ]),
      );
      const rotations = await audits(wh.id, 'webhook.secret.rotated');
      expect(rotations.map((r) => r.event.data)).toEqual([
        expect.objectContaining({ trigger: 'scheduled' }),
        {
          trigger: 'manual',
          fingerprint: fingerprint(manual.body.secret),
          previous_fingerprint: scheduled.fingerprint,
          previous_expires_at: expiresAt,
        },
      ]);
    });

    it('a manual rotation with no grace period destroys the claimed secret at once', async () => {
      const wh = await createWebhook();
      const manual = await api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, {
        key,
        body: { grace_period_hours: 0 },
      });
      expect(manual.status).toBe(200);
      expect(await signing(wh.id)).toEqual([manual.body.secret]);
      const [rotated] = await audits(wh.id, 'webhook.secret.rotated');
      expect(rotated.event.data).toEqual({
        trigger: 'manual',
        fingerprint: fingerprint(manual.body.secret),
        previous_fingerprint: fingerprint(wh.secret),
        previous_expires_at: clock.now().toISOString(),
      });
      // Its end is recorded like any other previous secret's, right after the rotation and by the same caller.
      const expired = await audits(wh.id, 'webhook.secret.previous_expired');
      expect(expired).toHaveLength(1);
      expect(expired[0].event).toMatchObject({
        type: 'webhook.secret.previous_expired',
        occurred_at: rotated.event.occurred_at,
        actor: rotated.event.actor,
        request_id: rotated.event.request_id,
        data: { fingerprint: fingerprint(wh.secret), expired_at: clock.now().toISOString() },
      });
      expect(expired[0].event.id > rotated.event.id).toBe(true);
      // A grace period, or nothing claimed to retire, records no such event.
      await api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key, body: { grace_period_hours: 1 } });
      expect(await audits(wh.id, 'webhook.secret.previous_expired')).toHaveLength(1);
    });

    it('a scheduled rotation with no grace period destroys the claimed secret and records its expiry', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, {
        key,
        body: { interval_days: 1, grace_period_hours: 0 },
      });
      clock.advance(DAY);
      const rotatedAt = clock.now();
      await sweeper.sweep();
      expect((await status(wh.id)).previous).toEqual([]);
      const [rotated] = await audits(wh.id, 'webhook.secret.rotated');
      expect(rotated.event.data).toMatchObject({
        trigger: 'scheduled',
        previous_fingerprint: fingerprint(wh.secret),
        previous_expires_at: rotatedAt.toISOString(),
      });
      await expectOneExpiryBySweep(wh.id, rotated, wh.secret, rotatedAt);
      // The next one retires an unclaimed secret (superseded, never held by anyone): no expiry to record.
      clock.advance(DAY);
      await sweeper.sweep();
      expect(await audits(wh.id, 'webhook.secret.rotated')).toHaveLength(2);
      expect(await audits(wh.id, 'webhook.secret.previous_expired')).toHaveLength(1);
    });

    it('a manual rotation beyond ten previous secrets destroys the oldest at once and records its expiry', async () => {
      const wh = await createWebhook();
      const issued = [wh.secret, ...(await rotateKeepingAWeek(wh.id, 12))];
      // The current secret and the ten newest previous ones, newest first; the two oldest are gone.
      expect(await signing(wh.id)).toEqual(issued.slice(2).reverse());
      const st = await status(wh.id);
      expect(st.previous.map((p: { fingerprint: string }) => p.fingerprint)).toEqual(
        issued
          .slice(2, 12)
          .reverse()
          .map((x) => fingerprint(x)),
      );
      const [stored] = await api.db.dataSource.query(
        'SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1',
        [wh.id],
      );
      expect(stored.n).toBe(11);
      // Each recorded as expired by the rotation that made one too many, right after it.
      const rotated = await audits(wh.id, 'webhook.secret.rotated');
      const expired = await audits(wh.id, 'webhook.secret.previous_expired');
      expect(expired.map((e) => e.event)).toEqual(
        [0, 1].map((i) =>
          expect.objectContaining({
            occurred_at: rotated[10 + i].event.occurred_at,
            actor: rotated[10 + i].event.actor,
            request_id: rotated[10 + i].event.request_id,
            data: { fingerprint: fingerprint(issued[i]), expired_at: clock.now().toISOString() },
          }),
        ),
      );
      expect(expired[0].event.id > rotated[10].event.id).toBe(true);
      expect(expired[0].event.id < rotated[11].event.id).toBe(true);
    });

    /**
     * A webhook that a replica with a clock 5 s ahead rotates once, then replicas on time `times` more: they do not
     * follow a time that far ahead, so the secret it issued is dated after the ones that replaced it.
     */
    const rotatedOnceAhead = async (times: number) => {
      const wh = await createWebhook();
      const now = clock.now().getTime();
      clock.set(now + 5000);
      const [ahead] = await rotateKeepingAWeek(wh.id, 1);
      clock.set(now + 1000);
      return { wh, now, ahead, onTime: await rotateKeepingAWeek(wh.id, times) };
    };

    it('a manual rotation beyond ten previous secrets destroys the one replaced first, also one dated ahead', async () => {
      const { wh, now, ahead, onTime } = await rotatedOnceAhead(11);
      // The create's secret, then the one dated ahead, were replaced first: they go first, newest first the rest.
      const kept = onTime.slice(0, 10).reverse();
      expect(await signing(wh.id)).toEqual([onTime[10], ...kept]);
      expect((await status(wh.id)).previous.map((p: { fingerprint: string }) => p.fingerprint)).toEqual(
        kept.map((x) => fingerprint(x)),
      );
      const expired = await audits(wh.id, 'webhook.secret.previous_expired');
      expect(expired.map((e) => e.event.data.fingerprint)).toEqual(
        [wh.secret, ahead].map((x) => fingerprint(x)),
      );
      clock.set(now + 5000);
    });

    it('a scheduled rotation beyond ten previous secrets destroys the oldest and records its expiry', async () => {
      const wh = await createWebhook();
      const issued = [wh.secret, ...(await rotateKeepingAWeek(wh.id, 10))];
      expect(await audits(wh.id, 'webhook.secret.previous_expired')).toHaveLength(0);
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      // The rotations of one instant are dated a millisecond apart, and the clock runs from the last of them.
      clock.advance(DAY + 1000);
      const rotatedAt = clock.now();
      await sweeper.sweep();
      const st = await status(wh.id);
      expect(st.current).toMatchObject({ trigger: 'scheduled', claimed: false });
      expect(st.previous.map((p: { fingerprint: string }) => p.fingerprint)).toEqual(
        issued
          .slice(1)
          .reverse()
          .map((x) => fingerprint(x)),
      );
      const [rotated] = await audits(wh.id, 'webhook.secret.rotated').then((a) => a.slice(-1));
      await expectOneExpiryBySweep(wh.id, rotated, wh.secret, rotatedAt);
    });

    it('a scheduled rotation beyond ten previous secrets destroys the one replaced first, also one dated ahead', async () => {
      const { wh, now, ahead, onTime } = await rotatedOnceAhead(10);
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      clock.set(now + DAY + 5000);
      await sweeper.sweep();
      expect((await status(wh.id)).previous.map((p: { fingerprint: string }) => p.fingerprint)).toEqual(
        onTime
          .slice()
          .reverse()
          .map((x) => fingerprint(x)),
      );
      const expired = await audits(wh.id, 'webhook.secret.previous_expired');
      expect(expired.map((e) => e.event.data.fingerprint)).toEqual(
        [wh.secret, ahead].map((x) => fingerprint(x)),
      );
      expect(expired[1].event.actor).toEqual({ type: 'scheduler', id: 'rotation.sweep' });
    });

    it('concurrent claims, manual rotations, updates and signing keep one unbroken chain of secrets', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      for (let round = 0; round < 6; round++) {
        clock.advance(DAY);
        await sweeper.sweep();
        const scheduled = (await status(wh.id)).current;
        expect(scheduled).toMatchObject({ trigger: 'scheduled', claimed: false });
        const seen = (await audits(wh.id, 'webhook.secret.rotated')).length;

        const rotate = () => api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key });
        const signingSets = Promise.all([signing(wh.id), signing(wh.id)]);
        const [claim, ...others] = await Promise.all([
          api.http.post(`/v1/webhooks/${wh.id}/secret/claim`, { key }),
          rotate(),
          rotate(),
          api.http.patch(`/v1/webhooks/${wh.id}`, { key, body: { description: `round ${round}` } }),
          rotate(),
          api.http.get(`/v1/webhooks/${wh.id}/secret-status`, { key }),
          rotate(),
        ]);
        expect(others.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
        expect([200, 409]).toContain(claim.status);
        for (const set of await signingSets) expect(set.length).toBeGreaterThan(0);
        const secrets = [others[0], others[1], others[3], others[5]].map((r) => r.body.secret as string);
        expect(new Set(secrets).size).toBe(4);

        // A claim that succeeded came before every rotation of the round (each of them issues a claimed
        // secret): the first rotation then kept the scheduled secret as previous; otherwise it superseded it.
        const events = (await audits(wh.id, 'webhook.secret.rotated')).slice(seen).map((a) => a.event.data);
        expect(events).toHaveLength(4);
        expect(new Set(events.map((e) => e.fingerprint))).toEqual(
          new Set(secrets.map((x) => fingerprint(x))),
        );
        if (claim.status === 200) {
          expect(fingerprint(claim.body.secret)).toBe(scheduled.fingerprint);
          expect(events[0].previous_fingerprint).toBe(scheduled.fingerprint);
          expect(events[0]).not.toHaveProperty('superseded_unclaimed_fingerprint');
        } else {
          expect(claim.body.code).toBe('no_unclaimed_secret');
          expect(events[0]).toMatchObject({
            previous_fingerprint: null,
            previous_expires_at: null,
            superseded_unclaimed_fingerprint: scheduled.fingerprint,
          });
        }
        for (let i = 1; i < events.length; i++) {
          expect(events[i].previous_fingerprint).toBe(events[i - 1].fingerprint);
          expect(events[i]).not.toHaveProperty('superseded_unclaimed_fingerprint');
        }
        const st = await status(wh.id);
        expect(st.current).toMatchObject({
          trigger: 'manual',
          claimed: true,
          fingerprint: events[3].fingerprint,
        });
        const [current] = await api.db.dataSource.query(
          "SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1 AND state = 'current'",
          [wh.id],
        );
        expect(current.n).toBe(1);
      }
    });

    it('previous-secrets ends the grace period now', async () => {
      const wh = await createWebhook();
      const manual = await api.http.post(`/v1/webhooks/${wh.id}/rotate-secret`, { key });
      expect(await signing(wh.id)).toHaveLength(2);
      const res = await api.http.delete(`/v1/webhooks/${wh.id}/previous-secrets`, { key });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ok: true, revoked: 1 });
      expect(await signing(wh.id)).toEqual([manual.body.secret]);
      expect((await status(wh.id)).previous).toEqual([]);
      expect((await api.http.delete(`/v1/webhooks/${wh.id}/previous-secrets`, { key })).body).toEqual({
        ok: true,
        revoked: 0,
      });
      const revoked = await audits(wh.id, 'webhook.secret.previous_revoked');
      expect(revoked.map((r) => r.event.data)).toEqual([
        { fingerprints: [fingerprint(wh.secret)], revoked: 1 },
      ]);
    });

    it('previous-secrets lists the revoked fingerprints newest first, as secret-status lists them', async () => {
      const wh = await createWebhook();
      await rotateKeepingAWeek(wh.id, 6);
      const listed = (await status(wh.id)).previous.map((p: { fingerprint: string }) => p.fingerprint);
      expect(listed).toHaveLength(6);
      expect((await api.http.delete(`/v1/webhooks/${wh.id}/previous-secrets`, { key })).body.revoked).toBe(6);
      const [revoked] = await audits(wh.id, 'webhook.secret.previous_revoked');
      expect(revoked.event.data).toEqual({ fingerprints: listed, revoked: 6 });
    });

    it('a deleted webhook never rotates', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      await api.http.delete(`/v1/webhooks/${wh.id}`, { key });
      clock.advance(2 * DAY);
      await sweeper.sweep();
      expect(await audits(wh.id, 'webhook.secret.rotated')).toHaveLength(0);
      const rows = await api.db.dataSource.query(
        'SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1',
        [wh.id],
      );
      expect(rows[0].n).toBe(0);
    });

    it('sends the advance notice once per due rotation, ROTATION_NOTICE_HOURS ahead', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 3 } });
      const due = new Date(clock.now().getTime() + 3 * DAY);
      clock.set(due.getTime() - 24 * HOUR - 1);
      await sweeper.sweep();
      expect(await audits(wh.id, 'webhook.secret.rotation_due')).toHaveLength(0);
      clock.set(due.getTime() - 24 * HOUR);
      await sweeper.sweep();
      await sweeper.sweep();
      const notices = await audits(wh.id, 'webhook.secret.rotation_due');
      expect(notices.map((n) => n.event.data)).toEqual([{ due_at: due.toISOString(), policy: 'webhook' }]);
      expect(notices[0].event.actor.type).toBe('scheduler');
      clock.set(due.getTime());
      await sweeper.sweep();
      expect(await audits(wh.id, 'webhook.secret.rotation_due')).toHaveLength(1);
      clock.set(due.getTime() + 2 * DAY);
      await sweeper.sweep();
      const next = await audits(wh.id, 'webhook.secret.rotation_due');
      expect(next.map((n) => n.event.data.due_at)).toEqual([
        due.toISOString(),
        new Date(due.getTime() + 3 * DAY).toISOString(),
      ]);
    });

    it('a secret.rotate job is idempotent: it rotates only a rotation still due at that due time', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      const due = new Date(clock.now().getTime() + DAY);
      clock.set(due);
      expect(await sweeper.rotateIfDue(wh.id, new Date(due.getTime() - 1))).toBe(false);
      expect(await sweeper.rotateIfDue(wh.id, due)).toBe(true);
      expect(await sweeper.rotateIfDue(wh.id, due)).toBe(false);
      expect(await audits(wh.id, 'webhook.secret.rotated')).toHaveLength(1);
    });

    it('a rotation no sweep announced gets its notice right before it, and only that one', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      const due = new Date(clock.now().getTime() + DAY);
      clock.set(due.getTime() + HOUR); // overdue, and no sweep has run since the policy was set
      expect(await sweeper.rotateIfDue(wh.id, due)).toBe(true);
      const history: { type: string; event: any }[] = await api.db.dataSource.query(
        'SELECT type, event FROM audit_events WHERE webhook_id = $1 ORDER BY seq',
        [wh.id],
      );
      const secretEvents = history.filter((e) => e.type.startsWith('webhook.secret.'));
      expect(secretEvents.map((e) => e.type)).toEqual([
        'webhook.secret.rotation_due',
        'webhook.secret.rotated',
      ]);
      expect(secretEvents[0].event.data).toEqual({ due_at: due.toISOString(), policy: 'webhook' });
      expect(secretEvents[0].event.actor.type).toBe('scheduler');
      expect(secretEvents[0].event.occurred_at).toBe(secretEvents[1].event.occurred_at);
      // The next due time is announced by the sweep, ahead, as usual; its rotation adds no second notice.
      const next = new Date(clock.now().getTime() + DAY);
      clock.set(next.getTime() - HOUR);
      await sweeper.sweep();
      clock.set(next);
      await sweeper.sweep();
      expect((await audits(wh.id, 'webhook.secret.rotation_due')).map((n) => n.event.data.due_at)).toEqual([
        due.toISOString(),
        next.toISOString(),
      ]);
      expect(await audits(wh.id, 'webhook.secret.rotated')).toHaveLength(2);
    });

    it('a sweep counts the notices it sends right before a rotation among the notices it reports', async () => {
      const wh = await createWebhook();
      await api.http.put(`/v1/webhooks/${wh.id}/rotation-policy`, { key, body: { interval_days: 1 } });
      const due = new Date(clock.now().getTime() + DAY);
      clock.set(due.getTime() + HOUR);
      // The advance notices step finds nothing (as when its clock read came just before the due time).
      const skipped = jest.spyOn(sweeper, 'sendNotices').mockResolvedValueOnce(0);
      // Earlier tests' webhooks may be due too: the result is compared with the events the sweep recorded.
      const recorded = async (): Promise<Record<string, number>> => {
        const rows: { type: string; n: number }[] = await api.db.dataSource.query(
          `SELECT type, count(*)::int AS n FROM audit_events
            WHERE type IN ('webhook.secret.rotation_due', 'webhook.secret.rotated') GROUP BY type`,
        );
        return Object.fromEntries(rows.map((r) => [r.type, r.n]));
      };
      const before = await recorded();
      let result;
      try {
        result = await sweeper.sweep();
      } finally {
        skipped.mockRestore();
      }
      const after = await recorded();
      const added = (type: string): number => (after[type] ?? 0) - (before[type] ?? 0);
      expect(result.rotated).toBeGreaterThanOrEqual(1);
      expect(result).toMatchObject({
        rotated: added('webhook.secret.rotated'),
        notices: added('webhook.secret.rotation_due'),
      });
      expect((await audits(wh.id, 'webhook.secret.rotation_due')).map((n) => n.event.data.due_at)).toEqual([
        due.toISOString(),
      ]);
    });
  });

  describe('exactly once at scale', () => {
    const countFor = async (project: string) => {
      const [secrets] = await api.db.dataSource.query(
        `SELECT count(*) FILTER (WHERE s.trigger = 'scheduled')::int AS scheduled,
                count(*) FILTER (WHERE s.state = 'previous')::int AS previous,
                count(DISTINCT s.webhook_id) FILTER (WHERE s.trigger = 'scheduled')::int AS webhooks
         FROM webhook_secrets s JOIN webhooks w ON w.id = s.webhook_id WHERE w.project_id = $1`,
        [project],
      );
      const [events] = await api.db.dataSource.query(
        `SELECT count(*)::int AS n, count(DISTINCT webhook_id)::int AS webhooks FROM audit_events
         WHERE project_id = $1 AND type = 'webhook.secret.rotated'`,
        [project],
      );
      const [due] = await api.db.dataSource.query(
        'SELECT count(*)::int AS n FROM rotation_schedules WHERE project_id = $1 AND next_rotation_at <= $2',
        [project, clock.now()],
      );
      return { ...secrets, events: events.n, eventWebhooks: events.webhooks, due: due.n };
    };

    it('three workers sweeping at once over 2,000 due webhooks rotate each exactly once', async () => {
      const project = randomUUID();
      const now = clock.now();
      await seedDueWebhooks(api.db.dataSource, {
        projectId: project,
        count: 2000,
        createdAt: new Date(now.getTime() - 31 * DAY),
        dueAt: new Date(now.getTime() - DAY),
        idPrefix: 'THREE',
      });
      const more = await Promise.all([
        startWorker({ clock, env: WORKER_ENV }),
        startWorker({ clock, env: WORKER_ENV }),
      ]);
      try {
        const sweepers = [sweeper, ...more.map((w) => w.get(RotationSweepService))];
        const results = await Promise.all(sweepers.map((s) => s.sweep(50)));
        expect(results.reduce((n, r) => n + r.rotated, 0)).toBeGreaterThanOrEqual(2000);
        expect(await countFor(project)).toEqual({
          scheduled: 2000,
          previous: 2000,
          webhooks: 2000,
          events: 2000,
          eventWebhooks: 2000,
          due: 0,
        });
      } finally {
        await Promise.all(more.map((w) => w.close()));
      }
    });

    it('a sweep running when its worker stops ends after its batches in flight; the next sweep does the rest', async () => {
      const project = randomUUID();
      const now = clock.now();
      await seedDueWebhooks(api.db.dataSource, {
        projectId: project,
        count: 5000,
        createdAt: new Date(now.getTime() - 31 * DAY),
        dueAt: new Date(now.getTime() - HOUR),
        idPrefix: 'STOP',
      });
      // The suite's worker stays out of it: the sweep job goes to the worker that stops.
      const idle = worker.get(RotationProcessor).worker;
      await idle.pause();
      const stopping = await startWorker({ clock, env: WORKER_ENV });
      // The first batch of each lane waits, its webhooks locked, until the worker has begun to stop.
      try {
        const processor = stopping.get(RotationProcessor);
        await stopWhileHeld({
          stopping,
          worker: processor.worker,
          proto: RotationRepository.prototype,
          method: 'completeRotations',
          held: 2,
          queue: QueueName.Rotation,
          job: JobName.RotationSweep,
        });
        // The two batches in flight, whole; nothing more. Read before the suite's worker resumes: a sweep it took
        // up then would do the rest.
        expect(await countFor(project)).toEqual({
          scheduled: 2000,
          previous: 2000,
          webhooks: 2000,
          events: 2000,
          eventWebhooks: 2000,
          due: 3000,
        });
      } finally {
        idle.resume();
      }
      await sweeper.sweep();
      expect(await countFor(project)).toEqual({
        scheduled: 5000,
        previous: 5000,
        webhooks: 5000,
        events: 5000,
        eventWebhooks: 5000,
        due: 0,
      });
    });

    it('a sweep that dies mid-way leaves no half rotation; the next sweep finishes without doubles', async () => {
      const project = randomUUID();
      const now = clock.now();
      await seedDueWebhooks(api.db.dataSource, {
        projectId: project,
        count: 1000,
        createdAt: new Date(now.getTime() - 31 * DAY),
        dueAt: new Date(now.getTime() - HOUR),
        idPrefix: 'CRASH',
      });
      const original = RotationRepository.prototype.completeRotations;
      let calls = 0;
      const spy = jest
        .spyOn(RotationRepository.prototype, 'completeRotations')
        .mockImplementation(async function (this: RotationRepository, ...args) {
          // The fourth batch dies after replacing its secrets, before committing: a crash mid-batch.
          if (++calls === 4) throw new Error('worker killed');
          return original.apply(this, args);
        });
      try {
        await expect(sweeper.sweep(100)).rejects.toThrow('worker killed');
      } finally {
        spy.mockRestore();
      }
      // Whole batches only: the three or four that committed (two lanes), never a part of the failed one.
      const partial = await countFor(project);
      expect([300, 400]).toContain(partial.scheduled);
      expect(partial.events).toBe(partial.scheduled);
      expect(partial.webhooks).toBe(partial.scheduled);
      expect(partial.due).toBe(1000 - partial.scheduled);

      await sweeper.sweep(100);
      expect(await countFor(project)).toEqual({
        scheduled: 1000,
        previous: 1000,
        webhooks: 1000,
        events: 1000,
        eventWebhooks: 1000,
        due: 0,
      });
    });
  });
});
