import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { JobSchedulerJson, JobSchedulerTemplateOptions, Queue, RepeatOptions } from 'bullmq';
import { withTimeout } from '@app/queue';

/** One recurring job: its scheduler id is its job name. */
export interface RecurringJob {
  queue: Queue;
  name: string;
  repeat: Omit<RepeatOptions, 'key'>;
  opts: JobSchedulerTemplateOptions;
}

/** How often the registrations are checked for. */
export const RECURRING_JOBS_CHECK_EVERY_MS = 15_000;
/** Longest wait for one look-up: a Redis that hangs must not stop the checks for good. */
const LOOKUP_TIMEOUT_MS = 5_000;
/**
 * How far past one interval from now the next run of an `every` job may be before it is taken for a schedule set
 * by a clock that ran ahead: more than the clocks of two hosts kept by NTP ever differ.
 */
export const RECURRING_JOBS_CLOCK_TOLERANCE_MS = 60_000;

/**
 * Registers recurring jobs with `upsertJobScheduler` at boot, and keeps them registered. The registration is
 * data in Redis: a Redis that restarts without its data (or fails over to an empty replica) forgets it, and
 * then nothing would ever run the sweeps, the relay's polling or the housekeeping again, with every health
 * check still green. So every {@link RECURRING_JOBS_CHECK_EVERY_MS} each scheduler is looked up, and
 * registered again when it is gone. `upsertJobScheduler` is idempotent: every worker replica does this and
 * there is still one schedule of each. BullMQ dates each next run by the clock of the worker that queued it, and
 * registering again keeps that date: a worker whose clock ran ahead (then corrected, or the host gone) would leave
 * the sweeps, the polling and the housekeeping waiting for as long as it was ahead. So a next run of an `every`
 * job that is further ahead than its interval (plus {@link RECURRING_JOBS_CLOCK_TOLERANCE_MS}) is scheduled again
 * from now.
 */
export abstract class RecurringJobsRegistrar implements OnApplicationBootstrap, OnApplicationShutdown {
  protected readonly logger = new Logger(this.constructor.name);
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  /** The jobs this registrar keeps registered. */
  protected abstract jobs(): RecurringJob[];

  async onApplicationBootstrap(): Promise<void> {
    await this.registerAll();
    this.timer = setInterval(() => void this.ensureRegistered(), RECURRING_JOBS_CHECK_EVERY_MS);
    this.timer.unref();
  }

  /** Registers every job (what the boot does, without the periodic check). */
  async registerAll(): Promise<void> {
    for (const job of this.jobs()) await this.register(job);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /**
   * Registers again every job whose scheduler Redis no longer has, or whose next run a clock that ran ahead put
   * past its interval; returns the names registered again.
   */
  async ensureRegistered(): Promise<string[]> {
    // While Redis is away a look-up waits for it: one round at a time.
    if (this.checking) return [];
    this.checking = true;
    const restored: string[] = [];
    try {
      for (const job of this.jobs()) {
        // Not while Redis is away: the look-up would wait in the client's queue (and hold up a shutdown's QUIT
        // behind it); the round after Redis is back does the check.
        if ((await job.queue.client).status !== 'ready') return restored;
        const found = await withTimeout(
          job.queue.getJobScheduler(job.name),
          LOOKUP_TIMEOUT_MS,
          () => new Error(`no answer from Redis in ${LOOKUP_TIMEOUT_MS} ms`),
        );
        if (found && !runsTooLate(found)) continue;
        if (found) await job.queue.removeJobScheduler(job.name);
        await this.register(job);
        restored.push(job.name);
        this.logger.warn(
          found
            ? `job scheduler ${job.name} next run was at ${new Date(found.next!).toISOString()}, more than its interval away (set by a clock that ran ahead?): scheduled again from now`
            : `job scheduler ${job.name} was missing from Redis (restarted without its data?): registered again`,
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

/**
 * Whether the next run of an `every` scheduler is further ahead than its interval allows. Its interval as
 * registered, not as this worker is configured: during a rolling deploy that changes it, a worker still on the
 * old interval must not take the new one's next run for a late one.
 */
function runsTooLate(found: JobSchedulerJson): boolean {
  if (found.every === undefined || typeof found.next !== 'number') return false;
  // Date.now(), not the injected Clock: the one BullMQ schedules by.
  return found.next > Date.now() + found.every + RECURRING_JOBS_CLOCK_TOLERANCE_MS;
}
