import { createHmac } from 'node:crypto';

/** Input of {@link signatureHeader}. */
export interface SignatureHeaderInput {
  /** Valid secrets, newest first; one `v1=` is emitted per secret in this order. */
  secrets: readonly string[];
  /** Unix seconds; the same value goes into `t=` and into the signed payload. */
  timestamp: number;
  /** The exact bytes that will be sent; a string is encoded as UTF-8. */
  body: string | Buffer;
}

function assertTimestamp(timestamp: number): void {
  // A fractional or negative `t=` could never round-trip through a receiver's integer parse.
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new TypeError(
      `timestamp must be a non-negative integer number of seconds, got ${String(timestamp)}`,
    );
  }
}

function assertSecret(secret: string): void {
  // An empty key still yields a valid-looking HMAC, which would hide a missing secret.
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new TypeError('a signing secret must be a non-empty string');
  }
}

/** Raw HMAC-SHA256 digest; shared with the verifier so both sides hash the same bytes. */
export function signatureDigest(secret: string, timestamp: number, body: string | Buffer): Buffer {
  assertSecret(secret);
  assertTimestamp(timestamp);
  // Key with the secret's UTF-8 bytes, not its hex decoding: that is what receivers are told to do.
  const hmac = createHmac('sha256', Buffer.from(secret, 'utf8'));
  hmac.update(`v0:${timestamp}:`, 'utf8');
  // Hash the body bytes as sent: re-serialising JSON would change whitespace and break receivers.
  hmac.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return hmac.digest();
}

/** Lower-case hex HMAC-SHA256 of `v0:<timestamp>:<body>` keyed with the secret's UTF-8 bytes. */
export function computeSignature(secret: string, timestamp: number, body: string | Buffer): string {
  return signatureDigest(secret, timestamp, body).toString('hex');
}

/** `t=<timestamp>,v1=<hex>[,v1=<hex>...]`, one `v1=` per secret, in the order given (newest first). */
export function signatureHeader({ secrets, timestamp, body }: SignatureHeaderInput): string {
  assertTimestamp(timestamp);
  if (secrets.length === 0) {
    throw new TypeError('at least one signing secret is required');
  }
  const parts = [`t=${timestamp}`];
  for (const secret of secrets) {
    parts.push(`v1=${computeSignature(secret, timestamp, body)}`);
  }
  return parts.join(',');
}
