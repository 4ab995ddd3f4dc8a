/** Longest `Retry-After` honoured: a receiver must not be able to park a delivery beyond the retention period. */
export const MAX_RETRY_AFTER_SECONDS = 6 * 3600;
/**
 * Spread of every delay (up to +10 %), so deliveries that failed together do not all come back together. Only
 * upwards: the schedule gives the time before each attempt, which a receiver may count on as a minimum.
 */
const JITTER = 0.1;

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
