import { createHmac } from 'node:crypto';
import fixture from '../../../test/fixtures/signature-vectors.json';
import { computeSignature, signatureHeader } from './signature.signer';

describe('signatureHeader', () => {
  it.each(fixture.vectors.map((v) => [v.name, v] as const))('reproduces the vector: %s', (_name, vector) => {
    expect(signatureHeader({ secrets: vector.secrets, timestamp: vector.timestamp, body: vector.body })).toBe(
      vector.signature_header,
    );
  });

  it('signs a Buffer body exactly like the same bytes as a string', () => {
    const vector = fixture.vectors[2];
    const body = Buffer.from(vector.body, 'utf8');
    expect(signatureHeader({ secrets: vector.secrets, timestamp: vector.timestamp, body })).toBe(
      vector.signature_header,
    );
  });

  it('emits one v1 per secret, in the order given', () => {
    const header = signatureHeader({ secrets: ['new', 'old'], timestamp: 10, body: '{}' });
    expect(header).toBe(
      `t=10,v1=${computeSignature('new', 10, '{}')},v1=${computeSignature('old', 10, '{}')}`,
    );
  });

  it.each([
    ['no secrets', { secrets: [], timestamp: 1, body: '' }],
    ['an empty secret', { secrets: [''], timestamp: 1, body: '' }],
    ['a fractional timestamp', { secrets: ['s'], timestamp: 1.5, body: '' }],
    ['a negative timestamp', { secrets: ['s'], timestamp: -1, body: '' }],
    ['a NaN timestamp', { secrets: ['s'], timestamp: Number.NaN, body: '' }],
  ])('refuses %s', (_name, input) => {
    expect(() => signatureHeader(input)).toThrow(TypeError);
  });
});

describe('computeSignature', () => {
  it('keys the HMAC with the UTF-8 bytes of the secret, not its hex decoding', () => {
    const secret = fixture.vectors[0].secrets[0];
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`v0:5:body`).digest('hex');
    expect(computeSignature(secret, 5, 'body')).toBe(expected);
    const hexKeyed = createHmac('sha256', Buffer.from(secret, 'hex')).update('v0:5:body').digest('hex');
    expect(computeSignature(secret, 5, 'body')).not.toBe(hexKeyed);
  });

  it('is lower-case hex of 32 bytes', () => {
    expect(computeSignature('s', 1, 'b')).toMatch(/^[0-9a-f]{64}$/);
  });
});
