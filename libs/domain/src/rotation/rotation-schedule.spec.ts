import { DAY_MS, nextRotationAt, noticeHorizon, rotationAnchor } from './rotation-schedule';

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

  it('notice horizon is now plus the lead time', () => {
    expect(noticeHorizon(t('2026-01-01T00:00:00.000Z'), 24).toISOString()).toBe('2026-01-02T00:00:00.000Z');
    expect(noticeHorizon(t('2026-01-01T00:00:00.000Z'), 0).toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });
});
