import { decodeTime } from 'ulid';
import { ulidGenerator } from './ulid';

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

describe('ulidGenerator', () => {
  it('mints well-formed, distinct ids that sort in minting order, across several buffer refills', () => {
    const next = ulidGenerator();
    const ids = Array.from({ length: 5000 }, () => next(1_780_000_000_000));
    for (const id of ids) expect(id).toMatch(ULID);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it('carries the given timestamp, and uses every character of the alphabet in the random part', () => {
    const next = ulidGenerator();
    const at = Date.UTC(2026, 10, 22, 9, 41, 7, 123);
    const id = next(at);
    expect(decodeTime(id)).toBe(at);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) for (const c of ulidGenerator()(at).slice(10)) seen.add(c);
    expect(seen.size).toBe(32);
  });
});
