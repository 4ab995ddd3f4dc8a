import { CREDENTIAL_CENSOR, blankCredentialLikeInUrlPath } from '@app/config';

/**
 * A webhook URL as it may appear in audit events and logs: the query and fragment can carry a receiver's
 * own tokens, so they are replaced by a marker; and in the rest, anything shaped like an API key or a signing
 * secret (a client that pasted one into the path) is blanked, a path segment that holds one once
 * percent-decoded as a whole, as the request log does.
 */
export function redactUrl(url: string): string {
  const cut = url.search(/[?#]/);
  const base = cut === -1 ? url : url.slice(0, cut);
  const kept = blankCredentialLikeInUrlPath(base);
  return cut === -1 ? kept : `${kept}${url[cut]}${CREDENTIAL_CENSOR}`;
}
