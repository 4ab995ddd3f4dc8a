import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { redisOptionsFromUrl } from '@app/queue';
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
});
