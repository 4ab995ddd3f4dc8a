import { ApiProperty } from '@nestjs/swagger';
import { FINGERPRINT_PATTERN, idPattern } from '../../observability/openapi';

/** A rotation policy: a webhook's own, or the project default (`webhook_id` null). */
export class RotationPolicyResponse {
  /** The webhook this policy belongs to; null for the project default. */
  @ApiProperty({
    type: String,
    nullable: true,
    example: 'wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P',
    pattern: idPattern('wh_'),
  })
  webhook_id!: string | null;
  /** Days between scheduled rotations. */
  @ApiProperty({ type: 'integer', minimum: 1, maximum: 365 })
  interval_days!: number;
  /** Hours the outgoing secret keeps signing after a scheduled rotation. */
  @ApiProperty({ type: 'integer', minimum: 0, maximum: 168 })
  grace_period_hours!: number;
  /**
   * The next scheduled rotation. For the project default: the earliest among the webhooks following it, or, while
   * none does, when a webhook created now would first rotate.
   */
  @ApiProperty({ format: 'date-time' })
  next_rotation_at!: string;
  /** The last rotation, manual or scheduled (for the default: the latest among its webhooks), or null. */
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  last_rotated_at!: string | null;
  /** When the policy was first set; its clock starts here. */
  @ApiProperty({ format: 'date-time' })
  created_at!: string;
  /** When the policy was last replaced. */
  @ApiProperty({ format: 'date-time' })
  updated_at!: string;
}

/** The current signing secret, described without its material. */
export class CurrentSecretStatus {
  /** When it was issued. */
  @ApiProperty({ format: 'date-time' })
  created_at!: string;
  /** `sha256:` + the first 16 hex characters of SHA-256 over the secret. */
  @ApiProperty({ example: 'sha256:3f9a1c2b7d4e5f60', pattern: FINGERPRINT_PATTERN })
  fingerprint!: string;
  /** What issued it. */
  @ApiProperty({ enum: ['created', 'manual', 'scheduled'] })
  trigger!: 'created' | 'manual' | 'scheduled';
  /** False only for a scheduled rotation's secret nobody has fetched with `secret/claim` yet. */
  @ApiProperty()
  claimed!: boolean;
}

/** A previous secret still signing during its grace period. */
export class PreviousSecretStatus {
  /** When it was issued. */
  @ApiProperty({ format: 'date-time' })
  created_at!: string;
  /** The instant it stops signing. */
  @ApiProperty({ format: 'date-time' })
  expires_at!: string;
  /** `sha256:` + the first 16 hex characters of SHA-256 over the secret. */
  @ApiProperty({ example: 'sha256:3f9a1c2b7d4e5f60', pattern: FINGERPRINT_PATTERN })
  fingerprint!: string;
}

/** `GET /v1/webhooks/{id}/secret-status`. */
export class SecretStatusResponse {
  /** The secret new deliveries are signed with. */
  @ApiProperty({ type: CurrentSecretStatus })
  current!: CurrentSecretStatus;
  /** Previous secrets still signing, newest first. */
  @ApiProperty({ type: [PreviousSecretStatus] })
  previous!: PreviousSecretStatus[];
  /** The next scheduled rotation, or null without a policy. */
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  next_rotation_at!: string | null;
}

/** `DELETE /v1/webhooks/{id}/previous-secrets`. */
export class RevokedPreviousResponse {
  /** Always true. */
  @ApiProperty({ type: Boolean, enum: [true], example: true })
  ok!: true;
  /** How many previous secrets stopped signing. */
  @ApiProperty({ type: 'integer', minimum: 0, example: 1 })
  revoked!: number;
}
