import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsString, Max, MaxLength, Min, ValidateIf } from 'class-validator';
import { AUDIT_EVENT_TYPES, type AuditEventType } from '@app/audit';
import { IsRfc3339 } from '@app/validation';

const present = (field: string) => (o: Record<string, unknown>) => o[field] !== undefined;
// Query values arrive as strings; only plain digits become a number, anything else stays and fails the type rule.
// However many digits: a whole number too large for the range is out of range (`max`), not "not a whole number".
const strictInt = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return value;
  const digits = value.replace(/^0+(?=\d)/, '');
  return digits.length > 6 ? Number.MAX_SAFE_INTEGER : Number(digits);
};

/** Query of `GET /v1/audit-events`. Unknown parameters are refused by name. */
export class ListAuditEventsQuery {
  /** Only this webhook's events. */
  @ApiPropertyOptional({
    example: 'wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P',
    maxLength: 64,
    description: "Only this webhook's events",
  })
  @ValidateIf(present('webhook_id'))
  @IsString({ message: 'webhook_id must be a single string' })
  @MaxLength(64, { message: 'webhook_id must be at most 64 characters' })
  webhook_id?: string;

  /** Only events of this type. */
  @ApiPropertyOptional({ enum: AUDIT_EVENT_TYPES, description: 'Only events of this type' })
  @ValidateIf(present('type'))
  @IsString({ message: 'type must be a single string' })
  @IsIn(AUDIT_EVENT_TYPES, { message: `type must be one of: ${AUDIT_EVENT_TYPES.join(', ')}` })
  type?: AuditEventType;

  /** Events that occurred at or after this instant (RFC 3339). */
  @ApiPropertyOptional({
    format: 'date-time',
    example: '2026-11-22T00:00:00.000Z',
    description: 'Only events whose `occurred_at` is at or after this instant (inclusive)',
  })
  @ValidateIf(present('since'))
  @IsString({ message: 'since must be a single string' })
  @IsRfc3339({ message: 'since must be an RFC 3339 timestamp such as 2026-11-22T09:41:07.123Z' })
  since?: string;

  /** Events that occurred at or before this instant (RFC 3339). */
  @ApiPropertyOptional({
    format: 'date-time',
    example: '2026-11-23T00:00:00.000Z',
    description: 'Only events whose `occurred_at` is at or before this instant (inclusive)',
  })
  @ValidateIf(present('until'))
  @IsString({ message: 'until must be a single string' })
  @IsRfc3339({ message: 'until must be an RFC 3339 timestamp such as 2026-11-22T09:41:07.123Z' })
  until?: string;

  /** Page size, 1 to 200; default 50. */
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 200,
    default: 50,
    description: 'Events per page',
  })
  @ValidateIf(present('limit'))
  @Transform(strictInt)
  @IsInt({
    message: ({ value }) =>
      Array.isArray(value) ? 'limit must be given once' : 'limit must be a whole number',
  })
  @Min(1, { message: 'limit must be from 1 to 200' })
  @Max(200, { message: 'limit must be from 1 to 200' })
  limit?: number;

  /** The `next_cursor` of the previous page, unchanged, with the same filters. */
  @ApiPropertyOptional({
    maxLength: 512,
    description: 'The `next_cursor` of the previous page, unchanged, sent with the same filters',
  })
  @ValidateIf(present('cursor'))
  @IsString({ message: 'cursor must be a single string' })
  @MaxLength(512, { message: 'cursor is invalid' })
  cursor?: string;
}
