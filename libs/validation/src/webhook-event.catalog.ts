/**
 * Every event type a webhook can subscribe to or be sent, in the order of the API contract ("Event catalog").
 * This is the only list: DTOs, the test route and the delivery code all derive from it.
 */
export const EVENT_CATALOG = [
  'task.completed',
  'task.failed',
  'task.cancelled',
  'task.healed',
  'session.completed',
  'session.failed',
  'session.recording.ready',
  'batch.completed',
  'batch.failed',
  'intervention.requested',
  'intervention.resolved',
  'identity.authenticated',
  'identity.authentication_failed',
] as const;

/** One event type of {@link EVENT_CATALOG}. */
export type WebhookEventType = (typeof EVENT_CATALOG)[number];
