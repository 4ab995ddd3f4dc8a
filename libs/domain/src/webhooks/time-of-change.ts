import type { WebhookEntity } from '@app/persistence';

/** How far ahead of this process's clock a webhook's `updated_at` is still followed (see {@link timeOfChange}). */
const FOLLOW_UPDATED_AT_MS = 1000;

/**
 * The time of a change to `webhook`, taken once its row lock is held, and after its last change: a time at or
 * before `updated_at` becomes `updated_at` + 1 ms, so every change moves `updated_at` forward and the audit
 * history's times never go backwards along a webhook's changes, even across API replicas whose clocks differ a
 * little. Only a little: an `updated_at` more than a second ahead is not followed, so that one bad clock cannot
 * push every later change into the future. (The rotation function applies the same rule.) Changes that do not
 * touch the webhook (its rotation policy, a claim) are dated the same way, so they too come after the changes
 * that committed before them.
 */
export function timeOfChange(now: Date, webhook: WebhookEntity): Date {
  const last = webhook.updatedAt.getTime();
  return last >= now.getTime() && last < now.getTime() + FOLLOW_UPDATED_AT_MS ? new Date(last + 1) : now;
}
