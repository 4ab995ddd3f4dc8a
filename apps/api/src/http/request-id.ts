import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { holdsCredentialLike } from '@app/config';

/**
 * Whether a caller's id is sane to echo: 1 to 128 characters, not all blank, printable ASCII and tab only. No C0
 * control (Node's parser refuses those but tab anyway; this holds whatever sits in front of it) and no DEL. Nor
 * anything past ASCII: Node reads header bytes as latin1 and writes header strings as UTF-8, so `é` sent as UTF-8
 * would come back as four bytes of mojibake, in the header and in the body's `request_id` alike (and C1 controls,
 * bytes 0x80 to 0x9f, would reach log lines unescaped). It ends up in logs and audit events, always as a JSON
 * string. Nor anything shaped like an API key or a signing secret: a client that puts its key there by mistake
 * would otherwise get it into every log line and audit event of the request, where no key or secret may be.
 */
function isSaneRequestId(id: string): boolean {
  if (id.length === 0 || id.length > 128 || id.trim() === '') return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c >= 0x7f) return false;
  }
  return !holdsCredentialLike(id);
}

/**
 * The caller's `x-request-id`: when the header came more than once (Node joins the lines with ", "), the first
 * non-blank line's, the one nearest the caller (a proxy adds its own after it), rather than the lines run together.
 */
function givenRequestId(req: IncomingMessage): string | undefined {
  const joined = req.headers['x-request-id'];
  if (typeof joined !== 'string') return undefined;
  if (!joined.includes(',')) return joined;
  // A comma may belong to one id: only the raw header lines tell whether there were several.
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2)
    if (raw[i].toLowerCase() === 'x-request-id' && raw[i + 1].trim() !== '') return raw[i + 1];
  return joined;
}

/** The request id: the caller's `x-request-id` when sane, else a new UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const given = givenRequestId(req);
  return typeof given === 'string' && isSaneRequestId(given) ? given : randomUUID();
}
