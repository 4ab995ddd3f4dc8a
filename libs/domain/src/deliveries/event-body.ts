import { createHash } from 'node:crypto';

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

/**
 * The `evt_` id of a published event that came without one, derived from its stream entry id (`<ms>-<seq>`):
 * the same entry read twice (a crash before XACK, a reclaimed entry) maps to the same id, so the unique key on
 * (event, webhook) absorbs the repeat. A real ULID: the entry's milliseconds, then 80 bits of a hash.
 */
export function eventIdFromStreamEntry(stream: string, entryId: string): string {
  const ms = Number(entryId.split('-')[0]);
  let time = '';
  let t = Number.isSafeInteger(ms) && ms >= 0 ? ms : 0;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const digest = createHash('sha256').update(`${stream}\n${entryId}`).digest();
  let bits = 0n;
  for (let i = 0; i < 10; i++) bits = (bits << 8n) | BigInt(digest[i]);
  let random = '';
  for (let i = 0; i < 16; i++) {
    random = CROCKFORD[Number(bits & 31n)] + random;
    bits >>= 5n;
  }
  return `evt_${time}${random}`;
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
