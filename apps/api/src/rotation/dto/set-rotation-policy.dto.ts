import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsDefined, IsInt, Max, Min, ValidateIf } from 'class-validator';

/** Body of `PUT /v1/webhooks/{id}/rotation-policy` and `PUT /v1/rotation-policy`: replaces the policy. */
export class SetRotationPolicyDto {
  /** Days between scheduled rotations, counted from the last rotation (or the policy's creation). */
  @ApiProperty({ type: 'integer', minimum: 1, maximum: 365, example: 30 })
  @IsDefined({ message: 'interval_days is required' })
  @IsInt({ message: 'interval_days must be a whole number' })
  @Min(1, { message: 'interval_days must be from 1 to 365' })
  @Max(365, { message: 'interval_days must be from 1 to 365' })
  interval_days!: number;

  /** How long the outgoing secret keeps signing after a scheduled rotation, in hours; default 24. */
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 168, example: 24 })
  @ValidateIf((o: SetRotationPolicyDto) => o.grace_period_hours !== undefined)
  @IsInt({ message: 'grace_period_hours must be a whole number' })
  @Min(0, { message: 'grace_period_hours must be from 0 to 168' })
  @Max(168, { message: 'grace_period_hours must be from 0 to 168' })
  grace_period_hours?: number;
}
