import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMinSize, IsArray, IsDefined, IsOptional, IsString } from 'class-validator';
import { EVENT_CATALOG, IsWebhookEvent, IsWebhookUrl, MaxCharacters } from '@app/validation';

// A host label: none of the URL's delimiters, whitespace, control characters, backslash, or the characters a host
// may not hold (`%`, `<`, `>`, `^`, `|`).
const LABEL = String.raw`[^/?#@\\\s\x00-\x1f\x7f-\x9f.:[\]%<>^|]+`;
// A port from 1 to 65535 (leading zeros allowed, as the URL parser reads them).
const PORT = String.raw`0*([1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])`;

/**
 * What every URL the server accepts looks like (a necessary condition; the address and name rules come on top):
 * `https` in any letter case, `//`, a host (a bracketed IPv6 literal, or labels none of which is empty, with one
 * trailing dot allowed), an optional port 1 to 65535, no `@` in the authority, and no whitespace, control character
 * or backslash anywhere.
 */
export const WEBHOOK_URL_PATTERN = String.raw`^[Hh][Tt][Tt][Pp][Ss]://(\[[0-9A-Fa-f:.]+\]|${LABEL}(\.${LABEL})*\.?)(:${PORT})?([/?#][^\\\s\x00-\x1f\x7f-\x9f]*)?$`;

/** Body of `POST /v1/webhooks`. */
export class CreateWebhookDto {
  /** HTTPS endpoint that receives the events; must be publicly reachable (no private, loopback or internal targets). */
  @ApiProperty({
    example: 'https://hooks.example.com/anchor',
    minLength: 1,
    maxLength: 2048,
    pattern: WEBHOOK_URL_PATTERN,
  })
  @IsDefined({ message: 'url is required' })
  @IsString({ message: 'url must be a string' })
  @IsWebhookUrl()
  url!: string;

  /** Event types to receive: one or more of the catalog; duplicates are removed, order kept. */
  @ApiProperty({
    enum: EVENT_CATALOG,
    isArray: true,
    minItems: 1,
    example: ['task.completed', 'task.failed'],
  })
  @IsDefined({ message: 'subscribed_events is required' })
  @IsArray({ message: 'subscribed_events must be an array' })
  @ArrayMinSize(1, { message: 'subscribed_events must list at least one event type' })
  @IsWebhookEvent({ each: true })
  subscribed_events!: string[];

  /** Free text for humans, at most 256 characters. */
  @ApiPropertyOptional({ type: String, nullable: true, maxLength: 256 })
  @IsOptional()
  @IsString({ message: 'description must be a string or null' })
  @MaxCharacters(256, { message: 'description must be at most 256 characters' })
  description?: string | null;
}
