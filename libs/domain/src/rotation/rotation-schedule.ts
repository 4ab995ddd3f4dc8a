/** Pure date rules of scheduled rotation; the SQL of the sweep applies the same arithmetic set-based. */

/** One hour in milliseconds. */
const HOUR_MS = 3_600_000;
/** One day in milliseconds: rotation intervals are whole 24-hour days, never calendar days (no DST drift). */
export const DAY_MS = 24 * HOUR_MS;

/**
 * When a webhook's rotation clock (re)started: the latest of the issue of its current secret (its creation
 * or its last rotation, manual or scheduled) and the creation of the policy it follows. A policy never
 * applies retroactively, and every rotation restarts the clock.
 */
export function rotationAnchor(secretIssuedAt: Date, policyCreatedAt: Date): Date {
  return new Date(Math.max(secretIssuedAt.getTime(), policyCreatedAt.getTime()));
}

/** The next scheduled rotation: the anchor plus the interval. */
export function nextRotationAt(anchor: Date, intervalDays: number): Date {
  return new Date(anchor.getTime() + intervalDays * DAY_MS);
}

/** The latest due time whose advance notice goes out at `now`: due at or before now + the lead time. */
export function noticeHorizon(now: Date, noticeHours: number): Date {
  return new Date(now.getTime() + noticeHours * HOUR_MS);
}
