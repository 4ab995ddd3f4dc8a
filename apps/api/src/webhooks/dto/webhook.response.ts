import { ApiProperty } from '@nestjs/swagger';
import { EVENT_CATALOG } from '@app/validation';
import { idPattern } from '../../observability/openapi';

/** A webhook as every route shows it. */
export class WebhookResponse {
  /** `wh_` + ULID. */
  @ApiProperty({ example: 'wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P', pattern: idPattern('wh_') })
  id!: string;
  /** The project (decided by the API key). */
  @ApiProperty({ format: 'uuid' })
  project_id!: string;
  /** The receiving endpoint. */
  @ApiProperty()
  url!: string;
  /** Free text, or null. */
  @ApiProperty({ type: String, nullable: true })
  description!: string | null;
  /** Subscribed event types: one or more, each once (duplicates were removed on the way in). */
  @ApiProperty({ enum: EVENT_CATALOG, isArray: true, minItems: 1, uniqueItems: true })
  subscribed_events!: string[];
  /** Whether it receives events. */
  @ApiProperty()
  enabled!: boolean;
  /** RFC 3339, UTC, milliseconds. */
  @ApiProperty({ format: 'date-time' })
  created_at!: string;
  /** RFC 3339, UTC, milliseconds; bumped by every real change and by rotations. */
  @ApiProperty({ format: 'date-time' })
  updated_at!: string;
}

/** A webhook with its signing secret: only create, rotate-secret and secret claim return this. */
export class WebhookWithSecretResponse extends WebhookResponse {
  /** 64 lower-case hex characters; shown once. */
  @ApiProperty({ pattern: '^[0-9a-f]{64}$' })
  secret!: string;
}

/** `GET /v1/webhooks`. */
export class WebhookListResponse {
  /** Live webhooks, oldest first. */
  @ApiProperty({ type: [WebhookResponse] })
  webhooks!: WebhookResponse[];
}

/** `{ ok: true }` acknowledgement. */
export class OkResponse {
  /** Always true. */
  @ApiProperty({ type: Boolean, enum: [true], example: true })
  ok!: true;
}
