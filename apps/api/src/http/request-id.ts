import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

// A caller's id is echoed only when it is of sane length and printable: it ends up in logs and audit events.
const SANE_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The request id: the caller's `x-request-id` when sane, else a new UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
}
