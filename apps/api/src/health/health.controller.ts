import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { LivenessResponse, NotReadyResponse, ReadinessReport } from './dto/health.response';
import { ReadinessIndicator } from './readiness.indicator';

/** Liveness and readiness, unauthenticated, for load balancers and orchestrators. */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly readiness: ReadinessIndicator,
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
    return this.health.check(this.readiness.checks());
  }
}
