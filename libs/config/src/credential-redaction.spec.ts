import { blankCredentialLike } from './credential-redaction';

const key = `ak_${'Ab9_-'.repeat(9)}`;
const secret = 'c0ffee'.repeat(10) + 'abcd';

describe('blankCredentialLike', () => {
  it.each([
    [null, null],
    ['prod receiver', 'prod receiver'],
    [`the key is ${key}.`, 'the key is [redacted].'],
    [`${secret} and ${secret}`, '[redacted] and [redacted]'],
  ])('%s is recorded as %s', (text, recorded) => {
    expect(blankCredentialLike(text)).toBe(recorded);
  });
});
