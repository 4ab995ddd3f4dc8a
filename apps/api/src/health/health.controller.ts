import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
  type HealthCheckResult,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import type Redis from 'ioredis';
import { Database, migrationsApplied } from '@app/persistence';
import { REDIS, probeRedis, withTimeout } from '@app/queue';

/** How long each readiness check waits for its dependency. */
const READY_CHECK_TIMEOUT_MS = 2000;

/** Liveness and readiness, unauthenticated, for load balancers and orchestrators. */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly typeorm: TypeOrmHealthIndicator,
    private readonly db: Database,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  @Get('live')
  @ApiOperation({ summary: 'The process is up' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({ summary: 'Postgres and Redis reachable, migrations applied; 503 otherwise' })
  ready(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.typeorm.pingCheck('postgres', { timeout: READY_CHECK_TIMEOUT_MS }),
      () => this.migrations(),
      () => this.redisCheck(),
    ]);
  }

  private async migrations(): Promise<HealthIndicatorResult> {
    const check = this.indicators.check('migrations');
    try {
      return (await withinReadyTimeout(migrationsApplied(this.db.dataSource)))
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

const TIMED_OUT = new Error('timed out');

/** `work`, or a rejection with {@link TIMED_OUT} after the readiness bound: a dependency that hangs is not ready. */
function withinReadyTimeout<T>(work: Promise<T>): Promise<T> {
  return withTimeout(work, READY_CHECK_TIMEOUT_MS, () => TIMED_OUT);
}
