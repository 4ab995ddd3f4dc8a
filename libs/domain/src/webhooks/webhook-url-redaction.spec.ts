import { redactUrl } from './webhook-url-redaction';

const key = `ak_${'Ab9_-'.repeat(9)}`;
const secret = 'c0ffee'.repeat(10) + 'abcd';

describe('redactUrl', () => {
  it.each([
    ['https://hooks.example.com/in', 'https://hooks.example.com/in'],
    ['https://hooks.example.com/in?token=abc', 'https://hooks.example.com/in?[redacted]'],
    ['https://hooks.example.com/in#sig=abc', 'https://hooks.example.com/in#[redacted]'],
    ['https://hooks.example.com/in?a=1#b', 'https://hooks.example.com/in?[redacted]'],
    ['https://hooks.example.com/in#b?a=1', 'https://hooks.example.com/in#[redacted]'],
    ['https://hooks.example.com?', 'https://hooks.example.com?[redacted]'],
    // A key or a secret pasted into the path is blanked; so is a segment that holds one percent-encoded.
    [`https://hooks.example.com/in/${key}/x`, 'https://hooks.example.com/in/[redacted]/x'],
    [`https://hooks.example.com/${secret}?t=1`, 'https://hooks.example.com/[redacted]?[redacted]'],
    [`https://hooks.example.com/a-${secret}-b`, 'https://hooks.example.com/a-[redacted]-b'],
    [
      `https://hooks.example.com/x${encodeURIComponent(key).replace(/_/g, '%5F')}`,
      'https://hooks.example.com/[redacted]',
    ],
    // Hex runs that are not 64 digits long, and percent-encoding without a key, stay as they are.
    [`https://hooks.example.com/${secret}0`, `https://hooks.example.com/${secret}0`],
    ['https://hooks.example.com/c0ffee/a%20b/%ZZ', 'https://hooks.example.com/c0ffee/a%20b/%ZZ'],
  ])('%s is recorded as %s', (url, recorded) => {
    expect(redactUrl(url)).toBe(recorded);
  });
});
