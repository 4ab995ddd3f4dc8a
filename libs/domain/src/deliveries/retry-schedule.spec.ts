import { MAX_RETRY_AFTER_SECONDS } from '@app/config';
import { retryDelayMs } from './retry-schedule';

const SCHEDULE = [0, 30, 120, 600, 3600, 21600];

describe('retryDelayMs', () => {
  it.each([
    [1, 30_000],
    [2, 120_000],
    [3, 600_000],
    [4, 3_600_000],
    [5, 21_600_000],
  ])('after attempt %i waits the schedule entry (%i ms) when the jitter draws 0', (attempt, ms) => {
    expect(retryDelayMs(SCHEDULE, attempt, undefined, () => 0)).toBe(ms);
  });

  it('spreads each delay upwards by at most 10 %, never below the schedule', () => {
    expect(retryDelayMs(SCHEDULE, 1, undefined, () => 0.5)).toBe(31_500);
    expect(retryDelayMs(SCHEDULE, 1, undefined, () => 0.999999)).toBeLessThanOrEqual(33_000);
    for (let i = 0; i < 200; i++) {
      const d = retryDelayMs(SCHEDULE, 2)!;
      expect(d).toBeGreaterThanOrEqual(120_000);
      expect(d).toBeLessThanOrEqual(132_000);
    }
  });

  it('is undefined once the schedule has no attempt left (6 attempts by default)', () => {
    expect(retryDelayMs(SCHEDULE, 6)).toBeUndefined();
    expect(retryDelayMs([0, 0, 0], 3)).toBeUndefined();
  });

  it('honours Retry-After as a minimum, capped', () => {
    expect(retryDelayMs(SCHEDULE, 1, 300, () => 0)).toBe(300_000);
    expect(retryDelayMs(SCHEDULE, 1, 5, () => 0)).toBe(30_000);
    expect(retryDelayMs(SCHEDULE, 1, 10 ** 9, () => 0)).toBe(MAX_RETRY_AFTER_SECONDS * 1000);
    expect(retryDelayMs([0, 0, 0], 1, 2)).toBe(2000);
  });
});
