import { redactUrl } from './webhook-url-redaction';

describe('redactUrl', () => {
  it.each([
    ['https://hooks.example.com/in', 'https://hooks.example.com/in'],
    ['https://hooks.example.com/in?token=abc', 'https://hooks.example.com/in?[redacted]'],
    ['https://hooks.example.com/in#sig=abc', 'https://hooks.example.com/in#[redacted]'],
    ['https://hooks.example.com/in?a=1#b', 'https://hooks.example.com/in?[redacted]'],
    ['https://hooks.example.com/in#b?a=1', 'https://hooks.example.com/in#[redacted]'],
    ['https://hooks.example.com?', 'https://hooks.example.com?[redacted]'],
  ])('%s is recorded as %s', (url, recorded) => {
    expect(redactUrl(url)).toBe(recorded);
  });
});
