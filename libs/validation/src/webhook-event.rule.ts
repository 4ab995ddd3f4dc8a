import { EVENT_CATALOG, type WebhookEventType } from './webhook-event.catalog';

const KNOWN: ReadonlySet<string> = new Set(EVENT_CATALOG);

/** True when `value` is an event type of the catalog (exact match: no trimming, no case folding). */
export function isWebhookEvent(value: unknown): value is WebhookEventType {
  return typeof value === 'string' && KNOWN.has(value);
}

/** Removes duplicate event types, keeping the first occurrence of each in its original order. */
export function normalizeEvents<T extends string>(list: readonly T[]): T[] {
  return [...new Set(list)];
}

/** The sentence reported when `field` holds an unknown event type; it lists every allowed value. */
export function unknownEventMessage(field: string = 'event_type'): string {
  return `${field} must be one of: ${EVENT_CATALOG.join(', ')}`;
}
