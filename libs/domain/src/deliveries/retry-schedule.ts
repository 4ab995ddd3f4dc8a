// The longest Retry-After honoured and the jitter (up to +10 %, only upwards: a receiver may count on the schedule's
// delays as minimums) live in the configuration, whose check of DELIVERY_RETRY_SCHEDULE counts with them too.
import { MAX_RETRY_AFTER_SECONDS, RETRY_JITTER } from '@app/config';

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
  const jittered = base * (1 + RETRY_JITTER * random());
  const floor = Math.min(retryAfterSeconds ?? 0, MAX_RETRY_AFTER_SECONDS) * 1000;
  return Math.round(Math.max(jittered, floor));
}
