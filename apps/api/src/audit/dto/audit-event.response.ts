import { ApiProperty } from '@nestjs/swagger';
import { AUDIT_EVENT_TYPES } from '@app/audit';
import { idPattern } from '../../observability/openapi';

/** Who made a change. */
export class AuditActorResponse {
  /** `api_key`, `scheduler`, `admin` (CLI) or `system`. */
  @ApiProperty({ enum: ['api_key', 'scheduler', 'admin', 'system'] })
  type!: string;
  /** The API key id for `api_key`; a process or operator label, or null, otherwise. */
  @ApiProperty({ type: String, nullable: true })
  id!: string | null;
}

/** One audit event, exactly as published on the audit stream. */
export class AuditEventResponse {
  /** `aud_` + ULID; the de-duplication key of stream consumers. */
  @ApiProperty({ example: 'aud_01JD4W1B6T0Q8H3X2Z5N7M9K4P', pattern: idPattern('aud_') })
  id!: string;
  /** Envelope version. */
  @ApiProperty({ type: 'integer', example: 1 })
  version!: number;
  /** What happened. */
  @ApiProperty({ enum: AUDIT_EVENT_TYPES })
  type!: string;
  /** RFC 3339, UTC, milliseconds. */
  @ApiProperty({ format: 'date-time' })
  occurred_at!: string;
  /** The project. */
  @ApiProperty({ format: 'uuid' })
  project_id!: string;
  /** The webhook concerned, or null (API key events). */
  @ApiProperty({ type: String, nullable: true, pattern: idPattern('wh_') })
  webhook_id!: string | null;
  /** Who did it. */
  @ApiProperty({ type: AuditActorResponse })
  actor!: AuditActorResponse;
  /** The request that made the change, or null outside a request. */
  @ApiProperty({ type: String, nullable: true })
  request_id!: string | null;
  /** Type-specific details; fingerprints, never secrets. */
  @ApiProperty({ type: Object })
  data!: Record<string, unknown>;
}

/** `GET /v1/audit-events`. */
export class AuditEventListResponse {
  /** Newest first. */
  @ApiProperty({ type: [AuditEventResponse] })
  events!: AuditEventResponse[];
  /** Pass as `cursor` for the next page; null on the last page. */
  @ApiProperty({ type: String, nullable: true })
  next_cursor!: string | null;
}
