import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  registerDecorator,
  type ValidationOptions,
} from 'class-validator';
import { AUDIT_EVENT_TYPES, type AuditEventType } from '@app/audit';

// RFC 3339 date-time: a full date, a time, and a zone (Z or an offset). Date-only or zone-less ISO 8601 forms
// are ambiguous about the instant they mean, so they are refused rather than guessed.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** True for an RFC 3339 timestamp naming a real instant (no 2026-02-30, no 25:00). */
export function isRfc3339(value: unknown): boolean {
  if (typeof value !== 'string' || !RFC3339.test(value)) return false;
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) return false;
  // Date rolls impossible days over (Feb 30 → Mar 2); the calendar date in the given zone must survive.
  const [y, mo, d] = value.slice(0, 10).split('-').map(Number);
  const probe = new Date(Date.UTC(y, mo - 1, d));
  return probe.getUTCFullYear() === y && probe.getUTCMonth() === mo - 1 && probe.getUTCDate() === d;
}

function IsRfc3339(options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name: 'rfc3339',
      target: target.constructor,
      propertyName: String(propertyName),
      options,
      validator: { validate: isRfc3339 },
    });
}

const present = (field: string) => (o: Record<string, unknown>) => o[field] !== undefined;
// Query values arrive as strings; only plain digits become a number, anything else stays and fails the type rule.
const strictInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^\d{1,6}$/.test(value) ? Number(value) : value;

/** Query of `GET /v1/audit-events`. Unknown parameters are refused by name. */
export class ListAuditEventsQuery {
  /** Only this webhook's events. */
  @ApiPropertyOptional({ example: 'wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P' })
  @ValidateIf(present('webhook_id'))
  @IsString({ message: 'webhook_id must be a single string' })
  @MaxLength(64, { message: 'webhook_id must be at most 64 characters' })
  webhook_id?: string;

  /** Only events of this type. */
  @ApiPropertyOptional({ enum: AUDIT_EVENT_TYPES })
  @ValidateIf(present('type'))
  @IsString({ message: 'type must be a single string' })
  @IsIn(AUDIT_EVENT_TYPES, { message: `type must be one of: ${AUDIT_EVENT_TYPES.join(', ')}` })
  type?: AuditEventType;

  /** Events that occurred at or after this instant (RFC 3339). */
  @ApiPropertyOptional({ format: 'date-time', example: '2026-11-22T00:00:00.000Z' })
  @ValidateIf(present('since'))
  @IsString({ message: 'since must be a single string' })
  @IsRfc3339({ message: 'since must be an RFC 3339 timestamp such as 2026-11-22T09:41:07.123Z' })
  since?: string;

  /** Events that occurred at or before this instant (RFC 3339). */
  @ApiPropertyOptional({ format: 'date-time', example: '2026-11-23T00:00:00.000Z' })
  @ValidateIf(present('until'))
  @IsString({ message: 'until must be a single string' })
  @IsRfc3339({ message: 'until must be an RFC 3339 timestamp such as 2026-11-22T09:41:07.123Z' })
  until?: string;

  /** Page size, 1 to 200; default 50. */
  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @ValidateIf(present('limit'))
  @Transform(strictInt)
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1, { message: 'limit must be from 1 to 200' })
  @Max(200, { message: 'limit must be from 1 to 200' })
  limit?: number;

  /** The `next_cursor` of the previous page, unchanged, with the same filters. */
  @ApiPropertyOptional()
  @ValidateIf(present('cursor'))
  @IsString({ message: 'cursor must be a single string' })
  @MaxLength(512, { message: 'cursor is invalid' })
  cursor?: string;
}
