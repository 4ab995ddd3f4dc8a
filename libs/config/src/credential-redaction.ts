/** What stands in for a blanked value, in logs and in audit events. */
export const CREDENTIAL_CENSOR = '[redacted]';

/** What has the form of an API key (`ak_…`) or a signing secret (64 hex digits), wherever a client put it. */
const CREDENTIAL_LIKE = /ak_[A-Za-z0-9_-]{16,}|(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])/g;

/** Whether `value` holds something shaped like an API key or a signing secret. */
export function holdsCredentialLike(value: string): boolean {
  return value.search(CREDENTIAL_LIKE) >= 0;
}

/** `value` with everything shaped like an API key or a signing secret blanked; null stays null. */
export function blankCredentialLike<T extends string | null>(value: T): T {
  return (value === null ? null : value.replace(CREDENTIAL_LIKE, CREDENTIAL_CENSOR)) as T;
}

/**
 * One part of a URL (a path segment, a query parameter's name or value) with everything shaped like a key or a
 * secret blanked, and the whole part blanked when its percent-decoded text holds one: `ak%5F…` is the key `ak_…`
 * all the same, and a reader can decode it as easily.
 */
export function blankCredentialLikeInUrlPart(part: string): string {
  const plain = blankCredentialLike(part);
  if (!plain.includes('%')) return plain;
  try {
    return holdsCredentialLike(decodeURIComponent(plain)) ? CREDENTIAL_CENSOR : plain;
  } catch {
    return plain;
  }
}

/**
 * The path of a URL (anything before its query) with everything shaped like a key or a secret blanked, and each
 * segment that holds one once percent-decoded blanked whole ({@link blankCredentialLikeInUrlPart}).
 */
export function blankCredentialLikeInUrlPath(path: string): string {
  return path.includes('%')
    ? path.split('/').map(blankCredentialLikeInUrlPart).join('/')
    : blankCredentialLike(path);
}
