import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { fingerprint, ManualClock, SecretsService } from '@app/domain';
import { DeliveriesRepository } from '@app/persistence';
import { DeliveryQueue, JobName, QueueName } from '@app/queue';
import { HousekeepingProcessor } from '../apps/worker/src/housekeeping/housekeeping.processor';
import { WorkerHeartbeatService } from '../apps/worker/src/health/worker-heartbeat.service';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { seedDueWebhooks } from './support/rotation-seed';
import { startWorker, stopWhileHeld, type RunningWorker } from './support/worker-harness';

describe('worker housekeeping', () => {
  const clock = new ManualClock(new Date('2026-11-22T09:00:00.000Z'));
  const heartbeatFile = join(tmpdir(), `worker-heartbeat-${process.pid}`);
  let api: RunningApi;
  let worker: RunningWorker;

  beforeAll(async () => {
    rmSync(heartbeatFile, { force: true });
    api = await startApi({ clock });
    worker = await startWorker({ clock, env: { WORKER_HEARTBEAT_FILE: heartbeatFile } });
  });
  afterAll(async () => {
    await worker.close();
    await api.close();
    rmSync(heartbeatFile, { force: true });
  });

  it('touches the heartbeat file while Postgres and Redis answer', async () => {
    expect(await worker.get(WorkerHeartbeatService).beat()).toBe(true);
    expect(existsSync(heartbeatFile)).toBe(true);
  });

  it('destroys previous secrets once their grace period has passed, and audits it', async () => {
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/hk', subscribed_events: ['task.completed'] },
    });
    const rotated = await api.http.post(`/v1/webhooks/${created.body.id}/rotate-secret`, {
      key,
      body: { grace_period_hours: 1 },
    });
    expect(rotated.status).toBe(200);
    const count = async () =>
      (
        await api.db.dataSource.query(
          "SELECT count(*)::int AS n FROM webhook_secrets WHERE webhook_id = $1 AND state = 'previous'",
          [created.body.id],
        )
      )[0].n as number;
    const processor = worker.get(HousekeepingProcessor);
    const expire = () => processor.process({ name: JobName.SecretsExpire, data: {} } as Job);

    clock.advance(59 * 60_000);
    await expire();
    expect(await count()).toBe(1);

    clock.advance(60_000);
    await expire();
    expect(await count()).toBe(0);
    const audits = await api.db.dataSource.query(
      "SELECT event FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.previous_expired'",
      [created.body.id],
    );
    expect(audits).toHaveLength(1);
    expect(audits[0].event.actor.type).toBe('system');
    expect(audits[0].event.data.fingerprint).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(audits[0].event.data.expired_at).toBe('2026-11-22T10:00:00.000Z');
  });

  it('records the expiries of one run in the order the secrets expired', async () => {
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/hk-order', subscribed_events: ['task.completed'] },
    });
    // Ten rotations, each previous secret kept for one hour less than the one before: the last replaced expires first.
    const start = clock.now().getTime();
    const replaced: string[] = [created.body.secret];
    for (let hours = 10; hours >= 1; hours--) {
      const rotated = await api.http.post(`/v1/webhooks/${created.body.id}/rotate-secret`, {
        key,
        body: { grace_period_hours: hours },
      });
      expect(rotated.status).toBe(200);
      replaced.push(rotated.body.secret);
    }
    clock.set(start + 11 * 3600_000);
    await worker.get(HousekeepingProcessor).process({ name: JobName.SecretsExpire, data: {} } as Job);
    const expired: { event: { data: { fingerprint: string; expired_at: string } } }[] =
      await api.db.dataSource.query(
        `SELECT event FROM audit_events WHERE webhook_id = $1 AND type = 'webhook.secret.previous_expired'
         ORDER BY seq`,
        [created.body.id],
      );
    // Expired one hour apart, the secret replaced last first.
    expect(expired.map((e) => e.event.data)).toEqual(
      replaced
        .slice(0, 10)
        .reverse()
        .map((secret, i) => ({
          fingerprint: fingerprint(secret),
          expired_at: new Date(start + (i + 1) * 3600_000).toISOString(),
        })),
    );
  });

  it('a backlog of expired secrets being destroyed when the worker stops ends after the batch in flight', async () => {
    const projectId = randomUUID();
    const now = clock.now();
    const ids = await seedDueWebhooks(api.db.dataSource, {
      projectId,
      count: 3000,
      createdAt: new Date(now.getTime() - 2 * 86_400_000),
      dueAt: new Date(now.getTime() + 30 * 86_400_000),
      idPrefix: 'EXPIRE',
    });
    await api.db.dataSource.query(
      `INSERT INTO webhook_secrets (id, webhook_id, state, trigger, claimed, key_id, ciphertext, fingerprint, created_at, expires_at)
       SELECT gen_random_uuid(), id, 'previous', 'created', true, 'seed', '\\x00'::bytea,
              'sha256:' || substr(md5('p' || id), 1, 16), $2, $3
       FROM unnest($1::text[]) AS id`,
      [ids, new Date(now.getTime() - 2 * 86_400_000), new Date(now.getTime() - 60_000)],
    );
    const left = async () =>
      (
        await api.db.dataSource.query(
          `SELECT count(*)::int AS n FROM webhook_secrets s JOIN webhooks w ON w.id = s.webhook_id
           WHERE w.project_id = $1 AND s.state = 'previous'`,
          [projectId],
        )
      )[0].n as number;
    const audited = async () =>
      (
        await api.db.dataSource.query(
          `SELECT count(*)::int AS n, count(DISTINCT event->'data'->>'fingerprint')::int AS distinct
           FROM audit_events WHERE project_id = $1 AND type = 'webhook.secret.previous_expired'`,
          [projectId],
        )
      )[0] as { n: number; distinct: number };
    // The suite's worker stays out of it: the job goes to the worker that stops.
    const idle = worker.get(HousekeepingProcessor).worker;
    await idle.pause();
    const stopping = await startWorker({ clock, env: { WORKER_HEARTBEAT_FILE: `${heartbeatFile}-2` } });
    // The first batch waits until the worker has begun to stop.
    try {
      const processor = stopping.get(HousekeepingProcessor);
      await stopWhileHeld({
        stopping,
        worker: processor.worker,
        proto: SecretsService.prototype,
        method: 'expireDue',
        held: 1,
        queue: QueueName.Housekeeping,
        job: JobName.SecretsExpire,
      });
      // The batch in flight (500), whole; the rest for the next run. Read before the suite's worker resumes: an
      // expiry job it took up then would do the rest.
      expect(await left()).toBe(2500);
      expect(await audited()).toEqual({ n: 500, distinct: 500 });
    } finally {
      idle.resume();
      rmSync(`${heartbeatFile}-2`, { force: true });
    }
    await worker.get(HousekeepingProcessor).process({ name: JobName.SecretsExpire, data: {} } as Job);
    expect(await left()).toBe(0);
    expect(await audited()).toEqual({ n: 3000, distinct: 3000 });
  });

  it('a scan for deliveries whose job was lost, when the worker stops, ends after the page in flight', async () => {
    const projectId = randomUUID();
    const now = clock.now();
    const [webhookId] = await seedDueWebhooks(api.db.dataSource, {
      projectId,
      count: 1,
      createdAt: new Date(now.getTime() - 2 * 86_400_000),
      dueAt: new Date(now.getTime() + 30 * 86_400_000),
      idPrefix: 'STRANDED',
    });
    // Deleted, so that the attempts the page in flight queues again end at once (failed), sending nothing.
    await api.db.dataSource.query('UPDATE webhooks SET deleted_at = $2 WHERE id = $1', [webhookId, now]);
    // Three pages of pending deliveries an hour past due, with no job in the queue.
    await api.db.dataSource.query(
      `INSERT INTO deliveries (id, webhook_id, project_id, external_event_id, event_type, payload, status, attempt,
         scheduled_at, created_at)
       SELECT gen_random_uuid(), $1, $2, 'evt_STRANDED' || g, 'task.completed', '{}', 'pending', 0,
              $3::timestamptz + g * interval '1 millisecond', $3
       FROM generate_series(1, 1200) g`,
      [webhookId, projectId, new Date(now.getTime() - 3600_000)],
    );
    const idle = worker.get(HousekeepingProcessor).worker;
    await idle.pause();
    const stopping = await startWorker({ clock, env: { WORKER_HEARTBEAT_FILE: `${heartbeatFile}-3` } });
    // Each page's jobs are looked up once.
    const pages = jest.spyOn(DeliveryQueue.prototype, 'areQueued');
    try {
      await stopWhileHeld({
        stopping,
        worker: stopping.get(HousekeepingProcessor).worker,
        proto: DeliveriesRepository.prototype,
        method: 'findStranded',
        held: 1,
        queue: QueueName.Housekeeping,
        job: JobName.DeliveriesPurge,
      });
      expect(pages).toHaveBeenCalledTimes(1);
      // The page in flight was queued again before the queue closed (the suite's worker makes its attempts, failed
      // for the deleted webhook); the rest waits for the next run.
      const states = async () =>
        (
          await api.db.dataSource.query(
            `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
                    count(*) FILTER (WHERE status = 'failed')::int AS failed
             FROM deliveries WHERE webhook_id = $1`,
            [webhookId],
          )
        )[0] as { pending: number; failed: number };
      await eventually(async () => (await states()).failed === 500, 30_000, 'the page in flight attempted');
      expect(await states()).toEqual({ pending: 700, failed: 500 });
    } finally {
      pages.mockRestore();
      idle.resume();
      rmSync(`${heartbeatFile}-3`, { force: true });
    }
    await api.db.dataSource.query('DELETE FROM deliveries WHERE webhook_id = $1', [webhookId]);
  });
});
