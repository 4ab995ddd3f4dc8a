import { timingSafeEqual } from 'node:crypto';
import { adminAuthorized } from './queue-board';

// The real comparison, watched: which buffers the check compares says what its time can depend on.
jest.mock('node:crypto', () => {
  const actual = jest.requireActual<typeof import('node:crypto')>('node:crypto');
  return { ...actual, timingSafeEqual: jest.fn(actual.timingSafeEqual) };
});

const TOKEN = 'an-admin-token-of-some-length';

describe('adminAuthorized', () => {
  it.each([
    ['the bearer token', `Bearer ${TOKEN}`, true],
    [
      'basic auth with the token as password',
      `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`,
      true,
    ],
    ['the bearer token after two spaces', `Bearer  ${TOKEN}`, true],
    ['the bearer token after a tab, the scheme in lower case', `bearer\t${TOKEN}`, true],
    ['no header', undefined, false],
    ['an empty header', '', false],
    ['the scheme alone', 'Bearer', false],
    ['the scheme and spaces', 'Bearer   ', false],
    ['a wrong token of the same length', `Bearer ${'x'.repeat(TOKEN.length)}`, false],
    ['a shorter token', 'Bearer short', false],
    ['a longer token', `Bearer ${TOKEN}${TOKEN}`, false],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, -1)}`, false],
    ['another scheme', `Token ${TOKEN}`, false],
  ])('%s: %s', (_name, header, expected) => {
    expect(adminAuthorized(header, TOKEN)).toBe(expected);
  });

  it('compares in constant time whatever the length of the given token, so the answer does not tell the length', () => {
    const compare = jest.mocked(timingSafeEqual);
    for (const given of ['x', 'short', TOKEN.slice(0, -1), `${TOKEN}!`, 'y'.repeat(200)]) {
      compare.mockClear();
      expect(adminAuthorized(`Bearer ${given}`, TOKEN)).toBe(false);
      expect(compare).toHaveBeenCalledTimes(1);
      const [a, b] = compare.mock.calls[0] as [Buffer, Buffer];
      expect(a.length).toBe(b.length);
    }
  });
});
