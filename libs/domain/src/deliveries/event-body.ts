import { createHash } from 'node:crypto';
import { isPrefixedUlid } from '../ids';

/** An event as receivers get it. */
export interface EventBody {
  id: string;
  type: string;
  created: string;
  project_id: string;
  text: string | null;
  data: unknown;
}

/** The exact body text of a delivery; stored once and sent byte for byte on every attempt. */
export function serializeEventBody(event: EventBody): string {
  // Fixed key order: the body is part of the contract receivers see.
  return JSON.stringify({
    id: event.id,
    type: event.type,
    created: event.created,
    project_id: event.project_id,
    text: event.text,
    data: event.data,
  });
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The `chars` low 5-bit groups of `bits` in Crockford base32, most significant first. */
function crockford(bits: bigint, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = CROCKFORD[Number(bits & 31n)] + out;
    bits >>= 5n;
  }
  return out;
}

/** The first `bytes` bytes of a digest as one number. */
function leadingBits(digest: Buffer, bytes: number): bigint {
  let bits = 0n;
  for (let i = 0; i < bytes; i++) bits = (bits << 8n) | BigInt(digest[i]);
  return bits;
}

/**
 * The `evt_` id of a published event that came without one, derived from its stream entry id (`<ms>-<seq>`):
 * the same entry read twice (a crash before XACK, a reclaimed entry) maps to the same id, so the unique key on
 * (event, webhook) absorbs the repeat. A real ULID: the entry's milliseconds, then 80 bits of a hash.
 */
export function eventIdFromStreamEntry(stream: string, entryId: string): string {
  const ms = Number(entryId.split('-')[0]);
  const time = Number.isSafeInteger(ms) && ms >= 0 && ms < 2 ** 48 ? BigInt(ms) : 0n;
  const digest = createHash('sha256').update(`${stream}\n${entryId}`).digest();
  return `evt_${crockford(time, 10)}${crockford(leadingBits(digest, 10), 16)}`;
}

/**
 * The id receivers get for an event its publisher gave the id `id`. An `evt_` ULID is kept (upper-cased, ULIDs
 * being case-insensitive); any other id, such as `billing:run-42`, maps to `evt_` and the first 128 bits of
 * SHA-256 over `publisher-event-id:` and the id, in Crockford base32: a well-formed ULID (whose time part means
 * nothing), always the same for the same id, so an event its publisher adds twice is still delivered once to each
 * webhook, and a publisher can compute which event a delivery carries.
 */
export function eventIdForPublisherId(id: string): string {
  if (id.startsWith('evt_')) {
    const canonical = `evt_${id.slice(4).toUpperCase()}`;
    // A ULID's first character is at most 7: 26 characters hold 130 bits, a ULID has 128.
    if (isPrefixedUlid(canonical, 'evt_') && canonical[4] <= '7') return canonical;
  }
  const digest = createHash('sha256').update(`publisher-event-id:${id}`).digest();
  return `evt_${crockford(leadingBits(digest, 16), 26)}`;
}

/** Human text and sample data of a synthetic test event, so receivers can tell it apart from real traffic. */
export function testEventContent(
  type: string,
  webhookId: string,
): { text: string; data: Record<string, unknown> } {
  const [subject] = type.split('.');
  return {
    text: `Test ${type} event sent from the webhooks API`,
    data: { test: true, webhook_id: webhookId, [`${subject}_id`]: '00000000-0000-0000-0000-000000000000' },
  };
}

/**
 * The stream that keeps the entries of the events stream `stream` that were not events, with the reason, for
 * their publisher (written by the worker's ingestor, counted by the API's metrics).
 */
export const rejectedEventsStream = (stream: string): string => `${stream}:rejected`;
