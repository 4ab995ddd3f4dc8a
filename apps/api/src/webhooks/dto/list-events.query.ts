import { DELIVERY_STATUSES, type DeliveryStatus } from '@app/persistence';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches } from 'class-validator';
import { EVENT_CATALOG, IsRfc3339, IsWebhookEvent } from '@app/validation';
const TIMESTAMP_MESSAGE = (field: string) =>
  `${field} must be an RFC 3339 timestamp such as 2026-11-22T09:41:07.123Z`;

/** Query of `GET /v1/webhooks/{id}/events`. Values arrive as strings and are checked as such (no coercion). */
export class ListEventsQuery {
  /** Rows per page, 1 to 100; default 25. */
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 100,
    default: 25,
    description: 'Rows per page',
  })
  @IsOptional()
  @IsString({ message: 'limit must be given once' })
  @Matches(/^0*(100|[1-9][0-9]?)$/, { message: 'limit must be a whole number from 1 to 100' })
  limit?: string;

  /** Rows to skip, 0 or more; default 0. An offset past the last row gives an empty page. */
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 0,
    default: 0,
    description: 'Rows to skip; an offset past the last row gives an empty page',
  })
  @IsOptional()
  @IsString({ message: 'offset must be given once' })
  @Matches(/^[0-9]+$/, { message: 'offset must be a whole number, 0 or more' })
  offset?: string;

  /** Only deliveries in this state. */
  @ApiPropertyOptional({ enum: DELIVERY_STATUSES, description: 'Only deliveries in this state' })
  @IsOptional()
  @IsString({ message: 'status must be given once' })
  @IsIn(DELIVERY_STATUSES, { message: `status must be one of: ${DELIVERY_STATUSES.join(', ')}` })
  status?: DeliveryStatus;

  /** Only deliveries of this event type. */
  @ApiPropertyOptional({ enum: EVENT_CATALOG, description: 'Only deliveries of this event type' })
  @IsOptional()
  @IsString({ message: 'event_type must be given once' })
  @IsWebhookEvent()
  event_type?: string;

  /** Only deliveries scheduled at or after this time (RFC 3339). */
  @ApiPropertyOptional({
    format: 'date-time',
    description: 'Only deliveries whose `scheduled_at` is at or after this instant (inclusive)',
  })
  @IsOptional()
  @IsString({ message: 'since must be given once' })
  @IsRfc3339({ message: TIMESTAMP_MESSAGE('since') })
  since?: string;

  /** Only deliveries scheduled at or before this time (RFC 3339). */
  @ApiPropertyOptional({
    format: 'date-time',
    description: 'Only deliveries whose `scheduled_at` is at or before this instant (inclusive)',
  })
  @IsOptional()
  @IsString({ message: 'until must be given once' })
  @IsRfc3339({ message: TIMESTAMP_MESSAGE('until') })
  until?: string;

  /** `true` to include each delivery's event body as `payload`; default `false`. */
  @ApiPropertyOptional({
    enum: ['true', 'false'],
    default: 'false',
    description: "`true` adds each delivery's event body as `payload`",
  })
  @IsOptional()
  @IsString({ message: 'include_payload must be given once' })
  @IsIn(['true', 'false'], { message: 'include_payload must be true or false' })
  include_payload?: 'true' | 'false';
}
