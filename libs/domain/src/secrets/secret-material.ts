import { createHash, randomBytes } from 'node:crypto';

/** A new signing secret: 32 random bytes as 64 lower-case hex characters. */
export function generateSecret(): string {
  return randomBytes(32).toString('hex');
}

/**
 * `sha256:` + the first 16 hex characters of SHA-256 over the secret. Lets a receiver confirm which secret it
 * holds; 64 bits of a hash of 256 random bits tell nothing about the secret.
 */
export function fingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 16)}`;
}
