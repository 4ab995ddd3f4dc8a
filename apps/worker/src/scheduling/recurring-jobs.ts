import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { JobSchedulerTemplateOptions, Queue, RepeatOptions } from 'bullmq';

/** One recurring job: its scheduler id is its job name. */
export interface RecurringJob {
  queue: Queue;
  name: string;
  repeat: Omit<RepeatOptions, 'key'>;
  opts: JobSchedulerTemplateOptions;
}

/** How often the registrations are checked for. */
export const RECURRING_JOBS_CHECK_EVERY_MS = 15_000;

/**
 * Registers recurring jobs with `upsertJobScheduler` at boot, and keeps them registered. The registration is
 * data in Redis: a Redis that restarts without its data (or fails over to an empty replica) forgets it, and
 * then nothing would ever run the sweeps, the relay's polling or the housekeeping again, with every health
 * check still green. So every {@link RECURRING_JOBS_CHECK_EVERY_MS} each scheduler is looked up, and
 * registered again when it is gone. `upsertJobScheduler` is idempotent: every worker replica does this and
 * there is still one schedule of each.
 */
export abstract class RecurringJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  protected readonly logger = new Logger(this.constructor.name);
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  /** The jobs this registrar keeps registered. */
  protected abstract jobs(): RecurringJob[];

  async onApplicationBootstrap(): Promise<void> {
    for (const job of this.jobs()) await this.register(job);
    this.timer = setInterval(() => void this.ensureRegistered(), RECURRING_JOBS_CHECK_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Registers again every job whose scheduler Redis no longer has; returns the names registered again. */
  async ensureRegistered(): Promise<string[]> {
    // While Redis is away a look-up waits for it: one round at a time.
    if (this.checking) return [];
    this.checking = true;
    const restored: string[] = [];
    try {
      for (const job of this.jobs()) {
        if (await job.queue.getJobScheduler(job.name)) continue;
        await this.register(job);
        restored.push(job.name);
        this.logger.warn(
          `job scheduler ${job.name} was missing from Redis (restarted without its data?): registered again`,
        );
      }
    } catch (e) {
      this.logger.warn(`cannot check the job schedulers: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.checking = false;
    }
    return restored;
  }

  private async register(job: RecurringJob): Promise<void> {
    await job.queue.upsertJobScheduler(job.name, job.repeat, { name: job.name, data: {}, opts: job.opts });
  }
}
