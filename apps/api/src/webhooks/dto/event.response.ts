import { DELIVERY_STATUSES } from '@app/persistence';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { EVENT_CATALOG } from '@app/validation';
import { idPattern } from '../../observability/openapi';

/** `POST /v1/webhooks/{id}/test`. */
export class TestEventAcceptedResponse {
  /** `evt_` + ULID of the synthetic event. */
  @ApiProperty({ example: 'evt_01JD4W1B6T0Q8H3X2Z5N7M9K4P', pattern: idPattern('evt_') })
  external_event_id!: string;
  /** Its type. */
  @ApiProperty({ enum: EVENT_CATALOG })
  event_type!: string;
}

/** One row of the delivery log. */
export class DeliveryLogEntryResponse {
  /** Delivery id (UUID), also sent as `Anchor-Delivery-Id`, identical across retries. */
  @ApiProperty({ format: 'uuid' })
  id!: string;
  /** The id of the event delivered, as in its body: `evt_` + ULID. */
  @ApiProperty({ pattern: idPattern('evt_') })
  external_event_id!: string;
  /** Event type. */
  @ApiProperty({ enum: EVENT_CATALOG })
  event_type!: string;
  /** `pending` (waiting for an attempt), `succeeded`, `failed` (refused for good) or `dead` (retries exhausted). */
  @ApiProperty({ enum: DELIVERY_STATUSES })
  status!: string;
  /** Attempts made so far. */
  @ApiProperty({ type: 'integer', minimum: 0 })
  attempt!: number;
  /** HTTP status of the last attempt, or null when it got no response. */
  @ApiProperty({ type: 'integer', nullable: true })
  response_status!: number | null;
  /** Why the last attempt did not succeed, or null. */
  @ApiProperty({ type: String, nullable: true })
  error_message!: string | null;
  /** Next attempt time while pending; the last attempt's time once it started. */
  @ApiProperty({ format: 'date-time' })
  scheduled_at!: string;
  /** When the delivery reached a final state, or null. */
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  completed_at!: string | null;
  /** The event body as sent; only with `include_payload=true`. */
  @ApiPropertyOptional({ type: Object })
  payload?: unknown;
}

/** Pagination of the delivery log. */
export class PaginationResponse {
  /** Rows returned in this page. */
  @ApiProperty({ type: 'integer', minimum: 0, maximum: 100 })
  limit!: number;
  /** Rows skipped. */
  @ApiProperty({ type: 'integer', minimum: 0 })
  offset!: number;
  /** Rows matching the filters in all. */
  @ApiProperty({ type: 'integer', minimum: 0 })
  total!: number;
}

/** `GET /v1/webhooks/{id}/events`. */
export class DeliveryLogResponse {
  /** Deliveries, newest first. */
  @ApiProperty({ type: [DeliveryLogEntryResponse] })
  events!: DeliveryLogEntryResponse[];
  /** Where this page is. */
  @ApiProperty({ type: PaginationResponse })
  pagination!: PaginationResponse;
}
