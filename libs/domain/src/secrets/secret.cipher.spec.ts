import { createHash } from 'node:crypto';
import type { AppConfig } from '@app/config';
import { SecretCipher } from './secret.cipher';
import { fingerprint, generateSecret } from './secret-material';

const ring = (...ids: string[]) =>
  ({
    secrets: {
      keyRing: ids.map((id) => ({ id, key: createHash('sha256').update(id).digest() })),
      usingDevelopmentKey: false,
      gracePeriodHours: 24,
    },
  }) as Pick<AppConfig, 'secrets'>;

describe('SecretCipher', () => {
  it('round-trips and never stores the plaintext', () => {
    const cipher = new SecretCipher(ring('k1'));
    const secret = generateSecret();
    const sealed = cipher.seal(secret, 'wh_A');
    expect(sealed.keyId).toBe('k1');
    expect(sealed.ciphertext.toString('latin1')).not.toContain(secret);
    expect(cipher.open(sealed, 'wh_A')).toBe(secret);
  });

  it('uses a fresh IV each time', () => {
    const cipher = new SecretCipher(ring('k1'));
    const secret = generateSecret();
    expect(cipher.seal(secret, 'wh_A').ciphertext.equals(cipher.seal(secret, 'wh_A').ciphertext)).toBe(false);
  });

  it('binds the ciphertext to its webhook', () => {
    const cipher = new SecretCipher(ring('k1'));
    const sealed = cipher.seal(generateSecret(), 'wh_A');
    expect(() => cipher.open(sealed, 'wh_B')).toThrow();
  });

  it('detects tampering', () => {
    const cipher = new SecretCipher(ring('k1'));
    const sealed = cipher.seal(generateSecret(), 'wh_A');
    sealed.ciphertext[20] ^= 1;
    expect(() => cipher.open(sealed, 'wh_A')).toThrow();
  });

  it('refuses a ciphertext too short to hold an IV and a full tag', () => {
    const cipher = new SecretCipher(ring('k1'));
    const sealed = cipher.seal(generateSecret(), 'wh_A');
    for (const length of [0, 4, 12, 16, 27])
      expect(() =>
        cipher.open({ ...sealed, ciphertext: sealed.ciphertext.subarray(0, length) }, 'wh_A'),
      ).toThrow(/shorter than an IV and a tag/);
  });

  it('decrypts with an older key of the ring and encrypts with the first', () => {
    const old = new SecretCipher(ring('old'));
    const secret = generateSecret();
    const sealed = old.seal(secret, 'wh_A');
    const rotated = new SecretCipher(ring('new', 'old'));
    expect(rotated.open(sealed, 'wh_A')).toBe(secret);
    expect(rotated.seal(secret, 'wh_A').keyId).toBe('new');
    expect(() => new SecretCipher(ring('new')).open(sealed, 'wh_A')).toThrow(/not in the key ring/);
  });
});

describe('secret material', () => {
  it('is 64 lower-case hex characters from 32 random bytes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const s = generateSecret();
      expect(s).toMatch(/^[0-9a-f]{64}$/);
      seen.add(s);
    }
    expect(seen.size).toBe(100);
  });

  it('fingerprints as sha256: plus 16 hex characters', () => {
    // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    expect(fingerprint('abc')).toBe('sha256:ba7816bf8f01cfea');
  });
});
