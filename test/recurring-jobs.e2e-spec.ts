import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_PREFIX, QueueName, redisOptionsFromUrl } from '@app/queue';
import { startWorker } from './support/worker-harness';
import {
  RecurringJobsRegistrar,
  type RecurringJob,
} from '../apps/worker/src/scheduling/recurring-jobs.registrar';
import { TEST_REDIS_URL } from './support/test-env';

/** Two recurring jobs on a queue of their own (a prefix of this test's), as the worker's registrars have. */
class TwoJobs extends RecurringJobsRegistrar {
  constructor(private readonly queue: Queue) {
    super();
  }

  protected jobs(): RecurringJob[] {
    return [
      { queue: this.queue, name: 'tick.fast', repeat: { every: 60_000 }, opts: { removeOnComplete: true } },
      { queue: this.queue, name: 'tick.daily', repeat: { pattern: '17 3 * * *', tz: 'UTC' }, opts: {} },
    ];
  }
}

describe('recurring jobs stay registered when Redis forgets them', () => {
  const prefix = `{recurring-${randomUUID()}}`;
  const redis = new Redis(redisOptionsFromUrl(TEST_REDIS_URL));
  const queue = new Queue('jobs', { connection: redisOptionsFromUrl(TEST_REDIS_URL), prefix });
  const registrar = new TwoJobs(queue);

  /** What a Redis restarted without its data has of this queue: nothing. */
  async function forgetEverything(): Promise<void> {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  }

  afterAll(async () => {
    await forgetEverything();
    await queue.close();
    redis.disconnect();
  });

  it('registers both at boot, and again only those that went missing', async () => {
    // What the boot does, without its 15 s timer (a tick in the middle would make a check of ours a no-op).
    await registrar.registerAll();
    expect((await queue.getJobSchedulers()).map((s) => s.key).sort()).toEqual(['tick.daily', 'tick.fast']);
    expect(await registrar.ensureRegistered()).toEqual([]);

    await queue.removeJobScheduler('tick.fast');
    expect(await registrar.ensureRegistered()).toEqual(['tick.fast']);

    await forgetEverything();
    expect(await queue.getJobSchedulers()).toEqual([]);
    expect(await registrar.ensureRegistered()).toEqual(['tick.fast', 'tick.daily']);
    const restored = await queue.getJobSchedulers();
    expect(restored.map((s) => s.key).sort()).toEqual(['tick.daily', 'tick.fast']);
    expect(restored.find((s) => s.key === 'tick.fast')?.every).toBe(60_000);
    // And the next run of each is queued again.
    expect(await queue.getJobCountByTypes('delayed', 'waiting', 'prioritized')).toBe(2);
  });

  it('schedules again from now a next run that a worker whose clock ran an hour ahead put an hour away', async () => {
    await forgetEverything();
    const now = Date.now();
    // The worker that ran ahead registered the jobs (BullMQ dates the next run by its clock), then went away.
    const ahead = jest.spyOn(Date, 'now').mockImplementation(() => now + 3_600_000);
    try {
      await registrar.registerAll();
    } finally {
      ahead.mockRestore();
    }
    expect((await queue.getJobScheduler('tick.fast'))?.next).toBeGreaterThan(now + 3_000_000);

    // Registering again, as every worker's boot does, keeps that date; the check does not.
    await registrar.registerAll();
    expect((await queue.getJobScheduler('tick.fast'))?.next).toBeGreaterThan(now + 3_000_000);
    expect(await registrar.ensureRegistered()).toEqual(['tick.fast']);
    expect((await queue.getJobScheduler('tick.fast'))?.next).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(await queue.getJobCountByTypes('delayed', 'waiting', 'prioritized')).toBe(2);
    // Scheduled within its interval now: left alone.
    expect(await registrar.ensureRegistered()).toEqual([]);
  });

  it('leaves alone a next run a longer interval put further away, as registered by a newer release', async () => {
    await forgetEverything();
    await registrar.registerAll();
    // A worker booted with a ten times longer interval, whose next run is 5 minutes away; this one, still on the
    // old interval, keeps checking.
    await queue.upsertJobScheduler(
      'tick.fast',
      { every: 600_000, startDate: Date.now() + 300_000 },
      { name: 'tick.fast', data: {} },
    );
    expect((await queue.getJobScheduler('tick.fast'))?.next).toBeGreaterThan(Date.now() + 200_000);
    expect(await registrar.ensureRegistered()).toEqual([]);
    expect((await queue.getJobScheduler('tick.fast'))?.every).toBe(600_000);
  });
});

describe('the recurring work the worker registers', () => {
  it('is on the documented queues, by the documented names, at the documented intervals', async () => {
    const worker = await startWorker();
    const queues = Object.values(QueueName).map(
      (name) => new Queue(name, { connection: redisOptionsFromUrl(TEST_REDIS_URL), prefix: QUEUE_PREFIX }),
    );
    try {
      const registered = [];
      for (const queue of queues)
        for (const s of await queue.getJobSchedulers())
          registered.push({ queue: queue.name, name: s.key, every: s.every, pattern: s.pattern, tz: s.tz });
      expect(registered.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        // Daily at 03:17 UTC: audit events past AUDIT_RETENTION_DAYS, and tail groups nobody keeps alive.
        { queue: 'housekeeping', name: 'audit.purge', every: undefined, pattern: '17 3 * * *', tz: 'UTC' },
        // The relay's poll, behind the wake-ups each commit sends.
        { queue: 'audit', name: 'audit.relay', every: 1000, pattern: undefined, tz: undefined },
        { queue: 'housekeeping', name: 'deliveries.purge', every: 60_000, pattern: undefined, tz: undefined },
        // ROTATION_SWEEP_EVERY_MS, 10 s by default.
        { queue: 'rotation', name: 'rotation.sweep', every: 10_000, pattern: undefined, tz: undefined },
        { queue: 'housekeeping', name: 'secrets.expire', every: 60_000, pattern: undefined, tz: undefined },
      ]);
    } finally {
      await Promise.all(queues.map((q) => q.close()));
      await worker.close();
    }
  });
});
