import { randomUUID } from 'node:crypto';
import { ulidGenerator } from '@app/audit';

const ulid = ulidGenerator();

/** `wh_` + ULID. */
export const newWebhookId = (): string => `wh_${ulid()}`;
/** `evt_` + ULID. */
export const newEventId = (): string => `evt_${ulid()}`;
/** `key_` + ULID. */
export const newApiKeyId = (): string => `key_${ulid()}`;
/** A UUID (delivery ids, secret row ids, project ids). */
export const newUuid = (): string => randomUUID();

/** The pattern of a ULID as ids carry it: 26 Crockford base32 characters, upper case (no anchors). */
export const ULID_PATTERN = '[0-9A-HJKMNP-TV-Z]{26}';
const ULID_ONLY = new RegExp(`^${ULID_PATTERN}$`);

/** Whether `s` has the shape of a prefixed ULID id (26 Crockford base32 characters, upper case). */
export function isPrefixedUlid(s: string, prefix: string): boolean {
  return s.length === prefix.length + 26 && s.startsWith(prefix) && ULID_ONLY.test(s.slice(prefix.length));
}
