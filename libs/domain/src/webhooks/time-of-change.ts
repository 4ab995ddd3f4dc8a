import type { WebhookEntity } from '@app/persistence';

/** How far ahead of this process's clock a webhook's last change is still followed (see {@link timeOfChange}). */
const FOLLOW_LAST_CHANGE_MS = 1000;

/** What a webhook row records of its last change: `updated_at`, and the last change that left it alone. */
export type LastChange = Pick<WebhookEntity, 'updatedAt' | 'lastChangeAt'>;

/**
 * The time of a change to `webhook`, taken once its row lock is held, and after its last change (the later of
 * `updated_at` and `last_change_at`): a time at or before it becomes it + 1 ms, so the audit history's times
 * never go backwards along a webhook's changes, even across API replicas whose clocks differ a little, and
 * `updated_at` moves forward with every change that sets it. Only a little: a time a second or more ahead is not
 * followed, so that one bad clock cannot push every later change into the future. (The rotation
 * function applies the same rule.) A change that leaves `updated_at` alone (its rotation policy, a claim, a
 * revocation) records its time in `last_change_at`, so that the next change comes after it too.
 */
export function timeOfChange(now: Date, webhook: LastChange): Date {
  const ahead = now.getTime() + FOLLOW_LAST_CHANGE_MS;
  // Each of the two is followed only when within the second: one far ahead does not hide the other.
  const last = Math.max(
    ...[webhook.updatedAt, webhook.lastChangeAt].map((t) =>
      t !== null && t.getTime() < ahead ? t.getTime() : -Infinity,
    ),
  );
  return last >= now.getTime() ? new Date(last + 1) : now;
}
