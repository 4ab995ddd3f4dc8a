import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { ManualClock } from '@app/domain';
import { JobName } from '@app/queue';
import { HousekeepingProcessor } from '../apps/worker/src/housekeeping/housekeeping.processor';
import { WorkerHeartbeat } from '../apps/worker/src/health/worker-heartbeat.service';
import { startApi, type RunningApi } from './support/api-harness';
import { startWorker, type RunningWorker } from './support/worker-harness';

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
    expect(await worker.get(WorkerHeartbeat).beat()).toBe(true);
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
});
