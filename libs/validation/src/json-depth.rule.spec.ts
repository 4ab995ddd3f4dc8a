import { MAX_JSON_DEPTH, nestsDeeperThan } from './json-depth.rule';

/** `levels` arrays inside each other: `[[…[]…]]`. */
function nestedArrays(levels: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < levels; i++) v = [v];
  return v;
}

/** `levels` objects inside each other: `{"a":{"a":…{}}}`. */
function nestedObjects(levels: number): unknown {
  let v: unknown = {};
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

describe('nestsDeeperThan', () => {
  it.each([
    ['a string', 'x', 0, false],
    ['null', null, 0, false],
    ['an empty object at limit 1', {}, 1, false],
    ['an empty object at limit 0', {}, 0, true],
    ['{"a":[]} at limit 2', { a: [] }, 2, false],
    ['{"a":[]} at limit 1', { a: [] }, 1, true],
    ['a deep branch beside shallow ones', { a: 1, b: [1, 2, { c: { d: [] } }], e: 'x' }, 4, true],
    ['the same at its own depth', { a: 1, b: [1, 2, { c: { d: [] } }], e: 'x' }, 5, false],
  ])('%s', (_what, value, max, expected) => expect(nestsDeeperThan(value, max)).toBe(expected));

  it('accepts exactly MAX_JSON_DEPTH levels and refuses one more, of arrays and of objects', () => {
    expect(nestsDeeperThan(nestedArrays(MAX_JSON_DEPTH))).toBe(false);
    expect(nestsDeeperThan(nestedArrays(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(nestsDeeperThan(nestedObjects(MAX_JSON_DEPTH))).toBe(false);
    expect(nestsDeeperThan(nestedObjects(MAX_JSON_DEPTH + 1))).toBe(true);
  });

  it('answers for a value nested far deeper than a recursive walk could follow', () => {
    const deep = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)) as unknown;
    expect(nestsDeeperThan(deep)).toBe(true);
  });
});
