/**
 * A webhook URL as it may appear in audit events and logs: the query and fragment can carry a receiver's
 * own tokens, so they are replaced by a marker.
 */
export function redactUrl(url: string): string {
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : `${url.slice(0, cut)}${url[cut]}[redacted]`;
}
