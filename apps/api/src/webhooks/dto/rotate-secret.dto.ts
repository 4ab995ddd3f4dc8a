import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, Max, Min, ValidateIf } from 'class-validator';

/** Optional body of `POST /v1/webhooks/{id}/rotate-secret`. */
export class RotateSecretDto {
  /** How long the outgoing secret keeps signing, in hours (0 ends it at once); default SECRET_GRACE_PERIOD_HOURS. */
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 168, example: 24 })
  @ValidateIf((o: RotateSecretDto) => o.grace_period_hours !== undefined)
  @IsInt({ message: 'grace_period_hours must be a whole number' })
  @Min(0, { message: 'grace_period_hours must be from 0 to 168' })
  @Max(168, { message: 'grace_period_hours must be from 0 to 168' })
  grace_period_hours?: number;
}
