import { MAX_RETRY_AFTER_SECONDS, RETRY_JITTER } from '@app/config';

/** Longest `Retry-After` honoured: a receiver must not be able to park a delivery beyond the retention period. */
export { MAX_RETRY_AFTER_SECONDS };
/**
 * Spread of every delay (up to +10 %), so deliveries that failed together do not all come back together. Only
 * upwards: the schedule gives the time before each attempt, which a receiver may count on as a minimum. The
 * configuration's check of DELIVERY_RETRY_SCHEDULE counts with the same two figures.
 */
const JITTER = RETRY_JITTER;

/**
 * Milliseconds to wait before attempt `attempt + 1`, after attempt `attempt` (1-based) asked for a retry; undefined
 * when the schedule has no further attempt (the delivery is dead). `schedule[i]` is the least wait before attempt
 * i + 1.
 * A `Retry-After` (429, 503) is honoured as a minimum, capped at {@link MAX_RETRY_AFTER_SECONDS}.
 */
export function retryDelayMs(
  schedule: readonly number[],
  attempt: number,
  retryAfterSeconds?: number,
  random: () => number = Math.random,
): number | undefined {
  if (attempt >= schedule.length) return undefined;
  const base = schedule[attempt] * 1000;
  const jittered = base * (1 + JITTER * random());
  const floor = Math.min(retryAfterSeconds ?? 0, MAX_RETRY_AFTER_SECONDS) * 1000;
  return Math.round(Math.max(jittered, floor));
}
