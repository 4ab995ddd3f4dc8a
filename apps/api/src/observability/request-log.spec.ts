import { CREDENTIAL_HEADERS } from '@app/config';
import { loggableHeaders } from './request-log';

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
});
