import type { Writable } from 'node:stream';
import type { TestingModule } from '@nestjs/testing';
import { Test } from '@nestjs/testing';
import { Logger as PinoLogger } from 'nestjs-pino';
import { LOG_DESTINATION } from '@app/config';
import { Clock, ManualClock, SystemClock } from '@app/domain';
import { WorkerModule } from '../../apps/worker/src/worker.module';

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
