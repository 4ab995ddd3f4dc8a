import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
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
import { LivenessResponse, NotReadyResponse, ReadinessReport } from './dto/health.response';

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
  @ApiOperation({ operationId: 'checkLiveness', summary: 'The process is up' })
  @ApiOkResponse({ type: LivenessResponse })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  // Documented here rather than by terminus: a failed check answers the error body, its report as `checks`.
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({
    operationId: 'checkReadiness',
    summary: 'Postgres and Redis reachable, migrations applied; 503 otherwise',
  })
  @ApiOkResponse({ type: ReadinessReport, description: 'Ready: every check is up' })
  @ApiServiceUnavailableResponse({
    type: NotReadyResponse,
    description:
      '`service_unavailable`: a check is down (or the process is stopping); `checks` says which, except on a request that arrives on an open connection once the server closes: the error body alone',
  })
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
