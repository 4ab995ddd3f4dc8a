import type { Writable } from 'node:stream';
import type { TestingModule } from '@nestjs/testing';
import { Test } from '@nestjs/testing';
import { Logger as PinoLogger } from 'nestjs-pino';
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue, Worker } from 'bullmq';
import { LOG_DESTINATION } from '@app/config';
import { Clock, ManualClock, SystemClock } from '@app/domain';
import type { JobName, QueueName } from '@app/queue';
import { WorkerModule } from '../../apps/worker/src/worker.module';
import { eventually } from './eventually';

/** A worker running in-process on the real test Postgres and Redis. */
export interface RunningWorker {
  module: TestingModule;
  clock: Clock;
  get<T>(token: abstract new (...args: any[]) => T): T;
  close(): Promise<void>;
}

/**
 * Boots the worker (queues, processors, schedulers) in-process. `env` overrides configuration for this
 * instance; `clock` replaces the wall clock so time-dependent work is driven by the test, never by sleeping.
 * `logDestination` receives the JSON log lines, Nest's own messages included, as the worker's process logs them
 * (set LOG_LEVEL in `env` too: tests default to silent); without it the worker logs nothing.
 */
export async function startWorker(
  opts: {
    env?: Record<string, string>;
    clock?: ManualClock;
    /** Providers to replace (e.g. the delivery resolver), as `{ token, value }`. */
    overrides?: { token: unknown; value: unknown }[];
    logDestination?: Writable;
  } = {},
): Promise<RunningWorker> {
  const overrides = opts.env ?? {};
  const saved = Object.fromEntries(Object.keys(overrides).map((k) => [k, process.env[k]]));
  Object.assign(process.env, overrides);
  try {
    const clock = opts.clock ?? new SystemClock();
    let builder = Test.createTestingModule({ imports: [WorkerModule] })
      .overrideProvider(Clock)
      .useValue(clock);
    for (const { token, value } of opts.overrides ?? []) {
      builder = builder.overrideProvider(token).useValue(value);
    }
    if (opts.logDestination)
      builder = builder.overrideProvider(LOG_DESTINATION).useValue(opts.logDestination);
    const module = await builder.compile();
    module.useLogger(opts.logDestination ? module.get(PinoLogger) : false);
    await module.init();
    return {
      module,
      clock,
      get: (token) => module.get(token, { strict: false }),
      close: () => module.close(),
    };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * Stops `stopping` (a worker started for the test) while a job it runs is in flight, as a SIGTERM would find it:
 * every call of `method` on `proto` waits (then runs the real method) until the worker's BullMQ `worker` has
 * begun to close, after the processors have heard of the shutdown. `job` is queued on the stopping worker's
 * `queue`; the stop begins once `held` calls are waiting. Resolves when the worker has stopped.
 */
export async function stopWhileHeld<T extends object, K extends keyof T & string>(opts: {
  stopping: RunningWorker;
  worker: Worker;
  proto: T;
  method: K;
  held: number;
  queue: QueueName;
  job: JobName;
}): Promise<void> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const original = opts.proto[opts.method] as (...args: unknown[]) => Promise<unknown>;
  const spy = jest.spyOn(opts.proto, opts.method as never).mockImplementation(async function (
    this: unknown,
    ...args: unknown[]
  ) {
    await gate;
    return original.apply(this, args);
  } as never);
  try {
    await opts.stopping
      .get<Queue>(getQueueToken(opts.queue) as never)
      .add(opts.job, {}, { jobId: `${opts.job}-stop-${Date.now()}` });
    await eventually(
      () => spy.mock.calls.length === opts.held,
      15_000,
      `${opts.held} held call(s) of ${opts.method}`,
    );
    const closed = opts.stopping.close();
    await eventually(() => opts.worker.closing !== undefined, 15_000, 'the worker to begin closing');
    release();
    await closed;
  } finally {
    release();
    spy.mockRestore();
  }
}
