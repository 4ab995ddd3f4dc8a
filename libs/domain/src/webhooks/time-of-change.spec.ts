import { timeOfChange } from './time-of-change';

describe('timeOfChange', () => {
  const now = new Date('2026-06-01T12:00:00.000Z');
  const at = (ms: number) => new Date(now.getTime() + ms);

  it('is now when the last change is before it', () => {
    expect(timeOfChange(now, { updatedAt: at(-1), lastChangeAt: null })).toEqual(now);
    expect(timeOfChange(now, { updatedAt: at(-50), lastChangeAt: at(-1) })).toEqual(now);
  });

  it('follows the later of updated_at and last_change_at by 1 ms when the clock has not passed it', () => {
    expect(timeOfChange(now, { updatedAt: at(0), lastChangeAt: null })).toEqual(at(1));
    expect(timeOfChange(now, { updatedAt: at(10), lastChangeAt: at(3) })).toEqual(at(11));
    expect(timeOfChange(now, { updatedAt: at(-10), lastChangeAt: at(20) })).toEqual(at(21));
  });

  it('does not follow a last change a second or more ahead (a clock far off)', () => {
    expect(timeOfChange(now, { updatedAt: at(999), lastChangeAt: null })).toEqual(at(1000));
    expect(timeOfChange(now, { updatedAt: at(1000), lastChangeAt: null })).toEqual(now);
    expect(timeOfChange(now, { updatedAt: at(-10), lastChangeAt: at(5000) })).toEqual(now);
    // One of the two far ahead does not hide the other, within the second.
    expect(timeOfChange(now, { updatedAt: at(5000), lastChangeAt: at(20) })).toEqual(at(21));
    expect(timeOfChange(now, { updatedAt: at(30), lastChangeAt: at(5000) })).toEqual(at(31));
  });
});
