import { CREDENTIAL_HEADERS } from '@app/config';
import { loggableHeaders, loggableUrl } from './request-log';

describe('loggableHeaders', () => {
  it('blanks every credential and signature header and keeps the others as they are', () => {
    const headers = Object.fromEntries(CREDENTIAL_HEADERS.map((h) => [h, `secret-${h}`]));
    const out = loggableHeaders({
      ...headers,
      'user-agent': 'curl/8',
      'x-request-id': 'r1',
      'set-cookie': ['a', 'b'],
    });
    for (const h of CREDENTIAL_HEADERS) expect(out[h]).toBe('[redacted]');
    expect(out).toMatchObject({ 'user-agent': 'curl/8', 'x-request-id': 'r1', 'set-cookie': ['a', 'b'] });
    expect(JSON.stringify(out)).not.toContain('secret-');
  });

  it('blanks proxy credentials and an API key or a secret sent under any other header name', () => {
    const key = `ak_${'Ab9_-'.repeat(9)}`;
    const secret = 'c0ffee'.repeat(10) + 'abcd';
    const out = loggableHeaders({
      'proxy-authorization': 'Basic dXNlcjpwYXNz',
      'x-api-key': key,
      anchor_api_key: key,
      'x-signing-secret': [secret, 'other'],
      'user-agent': 'curl/8',
    });
    expect(out).toMatchObject({
      'proxy-authorization': '[redacted]',
      'x-api-key': '[redacted]',
      anchor_api_key: '[redacted]',
      'x-signing-secret': ['[redacted]', 'other'],
      'user-agent': 'curl/8',
    });
    expect(JSON.stringify(out)).not.toContain(key);
    expect(JSON.stringify(out)).not.toContain(secret);
  });
});

describe('loggableUrl', () => {
  const key = `ak_${'Ab9_-'.repeat(9)}`;
  const secret = 'c0ffee'.repeat(10) + 'abcd';
  /** Every character percent-encoded, as a client may send it. */
  const encodeAll = (text: string) =>
    [...text].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).join('');

  it.each([
    ['/v1/webhooks', '/v1/webhooks'],
    [
      '/v1/webhooks/wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P/events',
      '/v1/webhooks/wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P/events',
    ],
    [
      '/v1/webhooks/wh_1/events?limit=5&offset=10&status=failed&event_type=task.failed&include_payload=true',
      '/v1/webhooks/wh_1/events?limit=5&offset=10&status=failed&event_type=task.failed&include_payload=true',
    ],
    [
      '/v1/audit-events?webhook_id=wh_1&type=webhook.created&since=2026-01-01T00:00:00.000Z&cursor=abc',
      '/v1/audit-events?webhook_id=wh_1&type=webhook.created&since=2026-01-01T00:00:00.000Z&cursor=abc',
    ],
    [`/v1/webhooks?api_key=${key}`, '/v1/webhooks?api_key=[redacted]'],
    ['/v1/webhooks?token=opaque&limit=3', '/v1/webhooks?token=[redacted]&limit=3'],
    ['/v1/webhooks?api%5Fkey=x', '/v1/webhooks?api%5Fkey=[redacted]'],
    [`/v1/webhooks?limit=${key}`, '/v1/webhooks?limit=[redacted]'],
    [`/v1/webhooks/${key}`, '/v1/webhooks/[redacted]'],
    [`/v1/webhooks/${secret}/test`, '/v1/webhooks/[redacted]/test'],
    [`/v1/webhooks?${key}`, '/v1/webhooks?[redacted]'],
    ['/v1/webhooks?', '/v1/webhooks?'],
    // Percent-encoded, a key or a secret is one all the same: the part that holds it is blanked whole.
    [`/v1/webhooks/${encodeAll(key)}/events`, '/v1/webhooks/[redacted]/events'],
    [`/v1/webhooks/x${encodeAll(secret)}`, '/v1/webhooks/[redacted]'],
    [
      `/v1/webhooks/wh_1/events?event_type=${encodeAll(key)}&limit=2`,
      '/v1/webhooks/wh_1/events?event_type=[redacted]&limit=2',
    ],
    [`/v1/webhooks?${encodeAll(key)}=1`, '/v1/webhooks?[redacted]=[redacted]'],
    [`/v1/webhooks?${encodeAll(secret)}`, '/v1/webhooks?[redacted]'],
    ['/v1/webhooks/a%20b?cursor=a%2Bb&x%ZZ=1', '/v1/webhooks/a%20b?cursor=a%2Bb&x%ZZ=[redacted]'],
  ])('%s is logged as %s', (url, logged) => {
    expect(loggableUrl(url)).toBe(logged);
  });

  it('keeps a hex run that is not a secret', () => {
    expect(loggableUrl(`/x/${secret}0`)).toBe(`/x/${secret}0`);
    expect(loggableUrl('/x/c0ffee')).toBe('/x/c0ffee');
  });
});
