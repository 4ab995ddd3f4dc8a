import { Inject, Injectable } from '@nestjs/common';
import {
  HealthIndicatorService,
  TypeOrmHealthIndicator,
  type HealthIndicatorFunction,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import type Redis from 'ioredis';
import { Database } from '@app/persistence';
import { REDIS, probeRedis, withTimeout } from '@app/queue';

/** How long each readiness check waits for its dependency. */
const READY_CHECK_TIMEOUT_MS = 2000;

const TIMED_OUT = new Error('timed out');

/**
 * The checks of `/health/ready`: Postgres answers, every migration is applied, Redis answers. Each is bounded, so a
 * dependency that hangs reads as down, and each turns its failure into a `down` result with the reason instead of
 * throwing.
 */
@Injectable()
export class ReadinessIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly typeorm: TypeOrmHealthIndicator,
    private readonly db: Database,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  /** The checks, in the order of the report. */
  checks(): HealthIndicatorFunction[] {
    return [
      () => this.typeorm.pingCheck('postgres', { timeout: READY_CHECK_TIMEOUT_MS }),
      () => this.migrations(),
      () => this.redisCheck(),
    ];
  }

  private async migrations(): Promise<HealthIndicatorResult> {
    const check = this.indicators.check('migrations');
    try {
      return (await withinReadyTimeout(this.db.migrationsApplied()))
        ? check.up()
        : check.down({ message: 'pending migrations' });
    } catch (e) {
      return check.down({ message: e === TIMED_OUT ? 'timed out' : 'cannot read migrations' });
    }
  }

  private async redisCheck(): Promise<HealthIndicatorResult> {
    const check = this.indicators.check('redis');
    try {
      await withinReadyTimeout(probeRedis(this.redis));
      return check.up();
    } catch (e) {
      return check.down({ message: e === TIMED_OUT ? 'timed out' : 'unreachable' });
    }
  }
}

/** `work`, or a rejection with {@link TIMED_OUT} after the readiness bound: a dependency that hangs is not ready. */
function withinReadyTimeout<T>(work: Promise<T>): Promise<T> {
  return withTimeout(work, READY_CHECK_TIMEOUT_MS, () => TIMED_OUT);
}
