import {
  DAY_MS,
  HOUR_MS,
  isRotationDue,
  nextRotationAt,
  noticeHorizon,
  previousExpiresAt,
  rotationAnchor,
} from './rotation-schedule';

const t = (iso: string) => new Date(iso);

describe('rotation schedule date rules', () => {
  it.each([
    [
      'secret issued after the policy',
      '2026-03-10T00:00:00.000Z',
      '2026-01-01T00:00:00.000Z',
      '2026-03-10T00:00:00.000Z',
    ],
    [
      'policy created after the secret',
      '2026-01-01T00:00:00.000Z',
      '2026-03-10T00:00:00.000Z',
      '2026-03-10T00:00:00.000Z',
    ],
    ['same instant', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'],
  ])('anchor: %s', (_, issued, policy, expected) => {
    expect(rotationAnchor(t(issued), t(policy)).toISOString()).toBe(expected);
  });

  it.each([
    [1, '2026-01-02T00:00:00.000Z'],
    [30, '2026-01-31T00:00:00.000Z'],
    [365, '2027-01-01T00:00:00.000Z'],
  ])('next rotation after %i days', (days, expected) => {
    expect(nextRotationAt(t('2026-01-01T00:00:00.000Z'), days).toISOString()).toBe(expected);
  });

  it('counts whole 24-hour days across a daylight-saving change', () => {
    const anchor = t('2026-03-28T12:00:00.000Z');
    expect(nextRotationAt(anchor, 2).getTime() - anchor.getTime()).toBe(2 * DAY_MS);
  });

  it('is due exactly at the scheduled instant, not a millisecond before', () => {
    const next = t('2026-01-02T00:00:00.000Z');
    expect(isRotationDue(next, new Date(next.getTime() - 1))).toBe(false);
    expect(isRotationDue(next, next)).toBe(true);
    expect(isRotationDue(next, new Date(next.getTime() + 1))).toBe(true);
  });

  it.each([
    [0, 0],
    [24, 24 * HOUR_MS],
    [168, 168 * HOUR_MS],
  ])('previous secret with %i hours of grace expires that long after the rotation', (hours, ms) => {
    const at = t('2026-01-01T00:00:00.000Z');
    expect(previousExpiresAt(at, hours).getTime() - at.getTime()).toBe(ms);
  });

  it('notice horizon is now plus the lead time', () => {
    expect(noticeHorizon(t('2026-01-01T00:00:00.000Z'), 24).toISOString()).toBe('2026-01-02T00:00:00.000Z');
    expect(noticeHorizon(t('2026-01-01T00:00:00.000Z'), 0).toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });
});
