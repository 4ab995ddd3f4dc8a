import fixture from '../../../test/fixtures/signature-vectors.json';
import { computeSignature, signatureHeader } from './signature.signer';
import {
  assertWebhookSignature,
  parseSignatureHeader,
  verifyWebhookSignature,
  WebhookSignatureError,
} from './signature.verifier';

const SECRET = fixture.vectors[0].secrets[0];
const OTHER = fixture.vectors[1].secrets[0];
const T = 1_800_000_000;
const BODY = '{"id":"evt_1","type":"task.completed"}';
const at = (seconds: number) => () => seconds * 1000;
const sig = (secrets: string[] = [SECRET], timestamp = T, body: string = BODY) =>
  signatureHeader({ secrets, timestamp, body });

describe('verifyWebhookSignature', () => {
  it.each(fixture.vectors.map((v) => [v.name, v] as const))('accepts the vector: %s', (_name, vector) => {
    for (const [index, secret] of vector.secrets.entries()) {
      expect(
        verifyWebhookSignature({
          headers: {
            'anchor-signature': vector.signature_header,
            'anchor-timestamp': String(vector.timestamp),
          },
          rawBody: vector.body,
          secrets: secret,
          now: at(vector.timestamp),
        }),
      ).toEqual({ ok: true, secretIndex: 0, timestamp: vector.timestamp });
      // Given all secrets, the index points at the first one that matches.
      expect(
        verifyWebhookSignature({
          signatureHeader: vector.signature_header,
          rawBody: Buffer.from(vector.body, 'utf8'),
          secrets: vector.secrets.slice(index),
          now: at(vector.timestamp),
        }),
      ).toMatchObject({ ok: true, secretIndex: 0 });
    }
  });

  it('reads header names in any letter case, from a record or a Fetch Headers', () => {
    const header = sig();
    for (const headers of [
      { 'Anchor-Signature': header, 'Anchor-Timestamp': String(T) },
      { 'ANCHOR-SIGNATURE': header },
      new Headers({ 'anchor-signature': header, 'anchor-timestamp': String(T) }),
    ]) {
      expect(verifyWebhookSignature({ headers, rawBody: BODY, secrets: SECRET, now: at(T) })).toMatchObject({
        ok: true,
      });
    }
  });

  describe('during a grace period (new secret first, then the previous one)', () => {
    const header = sig([OTHER, SECRET]);

    it.each([
      ['a receiver still holding the previous secret', [SECRET], 0],
      ['a receiver already holding the new secret', [OTHER], 0],
      ['a receiver holding both, previous listed first', [SECRET, OTHER], 0],
      ['a receiver holding an unrelated secret and the new one', ['unrelated', OTHER], 1],
    ])('verifies for %s', (_name, secrets, secretIndex) => {
      expect(
        verifyWebhookSignature({ signatureHeader: header, timestamp: T, rawBody: BODY, secrets, now: at(T) }),
      ).toEqual({ ok: true, secretIndex, timestamp: T });
    });
  });

  it.each([
    ['a tampered body', { rawBody: BODY.replace('evt_1', 'evt_2') }],
    ['a body with different whitespace', { rawBody: BODY.replace(':', ': ') }],
    ['a wrong secret', { secrets: OTHER }],
    ['a secret that differs only in case', { secrets: SECRET.toUpperCase() }],
    ['an empty body when one was signed', { rawBody: '' }],
  ])('rejects %s', (_name, override) => {
    expect(
      verifyWebhookSignature({
        signatureHeader: sig(),
        rawBody: BODY,
        secrets: SECRET,
        now: at(T),
        ...override,
      }),
    ).toEqual({ ok: false, reason: 'no_matching_signature' });
  });

  it('rejects a header whose t= was changed after signing', () => {
    const forged = sig().replace(`t=${T}`, `t=${T + 1}`);
    expect(
      verifyWebhookSignature({ signatureHeader: forged, rawBody: BODY, secrets: SECRET, now: at(T) }),
    ).toEqual({ ok: false, reason: 'no_matching_signature' });
  });

  it.each([
    ['at the edge in the past', T + 120, true],
    ['at the edge in the future', T - 120, true],
    ['one second too stale', T + 121, false],
    ['one second too far in the future', T - 121, false],
    ['a day stale', T + 86_400, false],
  ])('applies the default 120 s tolerance: %s', (_name, nowSeconds, ok) => {
    const result = verifyWebhookSignature({
      signatureHeader: sig(),
      rawBody: BODY,
      secrets: SECRET,
      now: at(nowSeconds),
    });
    expect(result).toEqual(
      ok ? { ok: true, secretIndex: 0, timestamp: T } : { ok: false, reason: 'timestamp_out_of_tolerance' },
    );
  });

  it('honours a custom tolerance and uses the real clock by default', () => {
    const now = Math.floor(Date.now() / 1000);
    expect(
      verifyWebhookSignature({ signatureHeader: sig([SECRET], now - 10), rawBody: BODY, secrets: SECRET }),
    ).toMatchObject({ ok: true });
    expect(
      verifyWebhookSignature({
        signatureHeader: sig([SECRET], now - 10),
        rawBody: BODY,
        secrets: SECRET,
        toleranceSeconds: 5,
      }),
    ).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
  });

  it.each([
    ['no headers at all', {}],
    ['only the timestamp header', { 'anchor-timestamp': String(T) }],
    ['an undefined value', { 'anchor-signature': undefined }],
  ])('reports missing_header for %s', (_name, headers) => {
    expect(verifyWebhookSignature({ headers, rawBody: BODY, secrets: SECRET, now: at(T) })).toEqual({
      ok: false,
      reason: 'missing_header',
    });
  });

  it('reports missing_header when the picked value is absent', () => {
    expect(
      verifyWebhookSignature({ signatureHeader: undefined, rawBody: BODY, secrets: SECRET, now: at(T) }),
    ).toEqual({ ok: false, reason: 'missing_header' });
  });

  const v1 = computeSignature(SECRET, T, BODY);
  it.each([
    ['an empty value', ''],
    ['no t=', `v1=${v1}`],
    ['no v1=', `t=${T}`],
    ['only an unknown scheme', `t=${T},v0=${v1}`],
    ['two t=', `t=${T},t=${T},v1=${v1}`],
    ['a non-numeric t=', `t=abc,v1=${v1}`],
    ['a negative t=', `t=-${T},v1=${v1}`],
    ['a fractional t=', `t=${T}.5,v1=${v1}`],
    ['a short v1=', `t=${T},v1=${v1.slice(2)}`],
    ['a non-hex v1=', `t=${T},v1=${'z'.repeat(64)}`],
    ['an empty part', `t=${T},,v1=${v1}`],
    ['a part without =', `t=${T},v1`],
    ['a base64 v1=', `t=${T},v1=${Buffer.from(v1, 'hex').toString('base64')}`],
  ])('reports malformed_header for %s', (_name, header) => {
    expect(
      verifyWebhookSignature({ signatureHeader: header, rawBody: BODY, secrets: SECRET, now: at(T) }),
    ).toEqual({ ok: false, reason: 'malformed_header' });
  });

  it('reports malformed_header when the signature header was sent twice', () => {
    expect(
      verifyWebhookSignature({
        headers: { 'anchor-signature': [sig(), sig()] },
        rawBody: BODY,
        secrets: SECRET,
        now: at(T),
      }),
    ).toEqual({ ok: false, reason: 'malformed_header' });
  });

  it('ignores unknown schemes and accepts spaces after commas and upper-case hex', () => {
    const header = `t=${T}, v2=abc, v1=${v1.toUpperCase()}`;
    expect(
      verifyWebhookSignature({ signatureHeader: header, rawBody: BODY, secrets: SECRET, now: at(T) }),
    ).toMatchObject({ ok: true });
  });

  it.each([
    ['a different second', String(T + 1)],
    ['a non-numeric value', 'yesterday'],
    ['milliseconds', String(T * 1000)],
  ])('reports timestamp_mismatch when Anchor-Timestamp is %s', (_name, timestamp) => {
    expect(
      verifyWebhookSignature({
        headers: { 'Anchor-Signature': sig(), 'Anchor-Timestamp': timestamp },
        rawBody: BODY,
        secrets: SECRET,
        now: at(T),
      }),
    ).toEqual({ ok: false, reason: 'timestamp_mismatch' });
    expect(
      verifyWebhookSignature({
        signatureHeader: sig(),
        timestamp,
        rawBody: BODY,
        secrets: SECRET,
        now: at(T),
      }),
    ).toEqual({ ok: false, reason: 'timestamp_mismatch' });
  });

  it('accepts a numeric timestamp equal to t=', () => {
    expect(
      verifyWebhookSignature({
        signatureHeader: sig(),
        timestamp: T,
        rawBody: BODY,
        secrets: SECRET,
        now: at(T),
      }),
    ).toMatchObject({ ok: true });
  });

  it.each([
    ['no secrets', { secrets: [] }],
    ['an empty secret', { secrets: '' }],
    ['a negative tolerance', { toleranceSeconds: -1 }],
  ])('throws a TypeError for the programming error of %s', (_name, override) => {
    expect(() =>
      verifyWebhookSignature({
        signatureHeader: sig(),
        rawBody: BODY,
        secrets: SECRET,
        now: at(T),
        ...override,
      }),
    ).toThrow(TypeError);
  });
});

describe('assertWebhookSignature', () => {
  it('returns the match', () => {
    expect(
      assertWebhookSignature({ signatureHeader: sig(), rawBody: BODY, secrets: SECRET, now: at(T) }),
    ).toEqual({
      secretIndex: 0,
      timestamp: T,
    });
  });

  it('throws a WebhookSignatureError carrying the reason', () => {
    const attempt = () =>
      assertWebhookSignature({ signatureHeader: sig(), rawBody: 'x', secrets: SECRET, now: at(T) });
    expect(attempt).toThrow(WebhookSignatureError);
    expect(attempt).toThrow(expect.objectContaining({ reason: 'no_matching_signature' }));
  });
});

describe('parseSignatureHeader', () => {
  it('splits the grace-period vector into its timestamp and both signatures', () => {
    const vector = fixture.vectors[1];
    const parsed = parseSignatureHeader(vector.signature_header);
    expect(parsed?.timestamp).toBe(vector.timestamp);
    expect(parsed?.signatures).toEqual(
      vector.secrets.map((s) => computeSignature(s, vector.timestamp, vector.body)),
    );
  });
});
