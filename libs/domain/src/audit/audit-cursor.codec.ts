import { createHmac, timingSafeEqual } from 'node:crypto';
import { ValidationFailedError } from '../errors';

/** The position after the last row of a page: the keyset (occurred_at, seq) of that row. */
export interface AuditCursorPosition {
  occurredAt: Date;
  seq: string;
}

/** The filters a cursor was issued for; a cursor only continues the listing it came from. */
export interface AuditCursorScope {
  projectId: string;
  webhookId?: string;
  type?: string;
  since?: string;
  until?: string;
}

const MAC_BYTES = 12;

const invalid = (): ValidationFailedError =>
  new ValidationFailedError('cursor is invalid; use the next_cursor of a previous page unchanged', [
    { field: 'cursor', rule: 'invalid_cursor', message: 'cursor is invalid' },
  ]);

/**
 * Opaque pagination cursors for the audit history: base64url of a small JSON with the keyset position and a
 * truncated HMAC over it and the listing's scope. The MAC makes any edit a clean 400 instead of a silently
 * different page, and stops a cursor from being replayed with other filters or by another project. Cursors are
 * made with the first of `keys` and taken with any of them, so replicas whose key rings list the same keys in
 * another order (a key rotation being rolled out) take each other's cursors.
 */
export class AuditCursorCodec {
  private readonly keys: readonly Buffer[];

  constructor(keys: Buffer | readonly Buffer[]) {
    this.keys = Buffer.isBuffer(keys) ? [keys] : keys;
    if (this.keys.length === 0) throw new Error('an audit cursor codec needs a key');
  }

  encode(position: AuditCursorPosition, scope: AuditCursorScope): string {
    const t = position.occurredAt.toISOString();
    const m = this.mac(this.keys[0], t, position.seq, scope);
    return Buffer.from(JSON.stringify({ t, s: position.seq, m }), 'utf8').toString('base64url');
  }

  /** The position of a cursor issued for `scope`; throws a validation error for anything else. */
  decode(cursor: string, scope: AuditCursorScope): AuditCursorPosition {
    if (cursor.length === 0 || cursor.length > 512 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    } catch {
      throw invalid();
    }
    const { t, s, m } = (parsed ?? {}) as { t?: unknown; s?: unknown; m?: unknown };
    if (typeof t !== 'string' || typeof s !== 'string' || typeof m !== 'string') throw invalid();
    if (!/^\d{1,19}$/.test(s)) throw invalid();
    const occurredAt = new Date(t);
    if (Number.isNaN(occurredAt.getTime()) || occurredAt.toISOString() !== t) throw invalid();
    const given = Buffer.from(m, 'base64url');
    const made = (key: Buffer) => {
      const expected = Buffer.from(this.mac(key, t, s, scope), 'base64url');
      return given.length === expected.length && timingSafeEqual(given, expected);
    };
    if (!this.keys.some(made)) throw invalid();
    return { occurredAt, seq: s };
  }

  private mac(key: Buffer, t: string, s: string, scope: AuditCursorScope): string {
    const material = JSON.stringify([
      t,
      s,
      scope.projectId,
      scope.webhookId ?? null,
      scope.type ?? null,
      scope.since ?? null,
      scope.until ?? null,
    ]);
    return createHmac('sha256', key).update(material).digest().subarray(0, MAC_BYTES).toString('base64url');
  }
}
