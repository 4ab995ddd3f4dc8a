import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMinSize, IsArray, IsBoolean, IsOptional, IsString, ValidateIf } from 'class-validator';
import { EVENT_CATALOG, IsWebhookEvent, IsWebhookUrl, MaxCharacters } from '@app/validation';
import { WEBHOOK_URL_PATTERN } from './create-webhook.dto';

// Absent fields stay as they are. Only `description` may be null (it clears it); a null anywhere else is an
// error, hence ValidateIf(!== undefined) rather than IsOptional for those.
const present = (field: string) => (o: Record<string, unknown>) => o[field] !== undefined;

/** Body of `PATCH /v1/webhooks/{id}`: any subset of the fields. */
export class UpdateWebhookDto {
  /** New HTTPS endpoint; the same URL rules as create. */
  @ApiPropertyOptional({
    example: 'https://hooks.example.com/anchor',
    minLength: 1,
    maxLength: 2048,
    pattern: WEBHOOK_URL_PATTERN,
  })
  @ValidateIf(present('url'))
  @IsString({ message: 'url must be a string' })
  @IsWebhookUrl()
  url?: string;

  /** New description; null clears it. */
  @ApiPropertyOptional({ type: String, nullable: true, maxLength: 256 })
  @IsOptional()
  @IsString({ message: 'description must be a string or null' })
  @MaxCharacters(256, { message: 'description must be at most 256 characters' })
  description?: string | null;

  /** Replaces the subscribed event types. */
  @ApiPropertyOptional({ enum: EVENT_CATALOG, isArray: true, minItems: 1 })
  @ValidateIf(present('subscribed_events'))
  @IsArray({ message: 'subscribed_events must be an array' })
  @ArrayMinSize(1, { message: 'subscribed_events must list at least one event type' })
  @IsWebhookEvent({ each: true })
  subscribed_events?: string[];

  /**
   * Whether the webhook receives events. `false` stops its deliveries at once, retries of earlier events
   * included (attempts that come due while it is disabled fail unsent); `true` again does not resend them.
   */
  @ApiPropertyOptional({
    description:
      'false stops the deliveries of the webhook at once: attempts that come due while it is disabled, retries of earlier events included, are recorded as failed and not sent; true again does not resend them',
  })
  @ValidateIf(present('enabled'))
  @IsBoolean({ message: 'enabled must be true or false' })
  enabled?: boolean;
}
