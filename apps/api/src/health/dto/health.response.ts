import { ApiProperty, type ApiPropertyOptions } from '@nestjs/swagger';
import { ErrorResponse } from '../../observability/openapi';

/** What one check reports: `up` or `down`, with a `message` when down. */
const CHECKS_SCHEMA: ApiPropertyOptions = {
  type: 'object',
  additionalProperties: {
    type: 'object',
    required: ['status'],
    properties: { status: { type: 'string', enum: ['up', 'down'] }, message: { type: 'string' } },
  },
};

/** `GET /health/live`. */
export class LivenessResponse {
  /** Always `ok`. */
  @ApiProperty({ enum: ['ok'] })
  status!: 'ok';
}

/** The per-dependency report of the readiness check (`postgres`, `migrations`, `redis`). */
export class ReadinessReport {
  /** `ok` when every check is up; `error` when one is down; `shutting_down` while the process stops. */
  @ApiProperty({ enum: ['ok', 'error', 'shutting_down'] })
  status!: string;
  /** The checks that are up. */
  @ApiProperty({ ...CHECKS_SCHEMA, nullable: true })
  info!: Record<string, unknown> | null;
  /** The checks that are down. */
  @ApiProperty({ ...CHECKS_SCHEMA, nullable: true })
  error!: Record<string, unknown> | null;
  /** Every check. */
  @ApiProperty(CHECKS_SCHEMA)
  details!: Record<string, unknown>;
}

/** `GET /health/ready` when not ready: the error body, with the readiness report as `checks`. */
export class NotReadyResponse extends ErrorResponse {
  /** Which dependency is down, and why. */
  @ApiProperty({ type: ReadinessReport })
  checks!: ReadinessReport;
}
