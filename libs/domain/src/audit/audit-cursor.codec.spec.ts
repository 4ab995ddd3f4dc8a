import { AuditCursorCodec, type AuditCursorScope } from './audit-cursor.codec';
import { ValidationFailedError } from '../errors';

describe('AuditCursorCodec', () => {
  const codec = new AuditCursorCodec(Buffer.alloc(32, 7));
  const scope: AuditCursorScope = {
    projectId: '6f1c2a1e-0000-4000-8000-000000000001',
    type: 'webhook.updated',
  };
  const position = { occurredAt: new Date('2026-11-22T09:41:07.123Z'), seq: '9007199254740993' };

  const rejects = (cursor: string, s: AuditCursorScope = scope) => {
    let error: unknown;
    try {
      codec.decode(cursor, s);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect((error as ValidationFailedError).details).toEqual([
      expect.objectContaining({ field: 'cursor', rule: 'invalid_cursor' }),
    ]);
  };

  it('round-trips a position, seq beyond 2^53 included, as base64url', () => {
    const cursor = codec.encode(position, scope);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(codec.decode(cursor, scope)).toEqual(position);
  });

  it('refuses any edited character', () => {
    const cursor = codec.encode(position, scope);
    for (let i = 0; i < cursor.length; i++) {
      const c = cursor[i] === 'A' ? 'B' : 'A';
      const edited = cursor.slice(0, i) + c + cursor.slice(i + 1);
      // Base64url can encode the same byte two ways only in the last character's unused bits.
      if (
        i === cursor.length - 1 &&
        Buffer.from(edited, 'base64url').equals(Buffer.from(cursor, 'base64url'))
      )
        continue;
      rejects(edited);
    }
  });

  it('refuses a re-encoded payload with another position', () => {
    const decoded = JSON.parse(Buffer.from(codec.encode(position, scope), 'base64url').toString()) as object;
    rejects(Buffer.from(JSON.stringify({ ...decoded, s: '1' })).toString('base64url'));
    rejects(Buffer.from(JSON.stringify({ ...decoded, t: '2026-11-22T09:41:07.124Z' })).toString('base64url'));
  });

  it('binds a cursor to its project and filters', () => {
    const cursor = codec.encode(position, scope);
    rejects(cursor, { ...scope, projectId: '6f1c2a1e-0000-4000-8000-000000000002' });
    rejects(cursor, { ...scope, type: undefined });
    rejects(cursor, { ...scope, webhookId: 'wh_X' });
    rejects(cursor, { ...scope, since: '2026-01-01T00:00:00Z' });
  });

  it('refuses a cursor from another key', () => {
    rejects(new AuditCursorCodec(Buffer.alloc(32, 8)).encode(position, scope));
  });

  it('takes a cursor made with any key of its ring, and makes its own with the first', () => {
    const [k1, k2] = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)];
    // Two replicas during a key rotation's rollout: the same keys, in another order.
    const before = new AuditCursorCodec([k1, k2]);
    const after = new AuditCursorCodec([k2, k1]);
    expect(after.decode(before.encode(position, scope), scope)).toEqual(position);
    expect(before.decode(after.encode(position, scope), scope)).toEqual(position);
    expect(after.encode(position, scope)).toBe(new AuditCursorCodec(k2).encode(position, scope));
    // Once a key is dropped, its cursors are refused like any other.
    expect(() => new AuditCursorCodec([k2]).decode(before.encode(position, scope), scope)).toThrow(
      'cursor is invalid',
    );
  });

  it.each(['', '!!!', 'a'.repeat(600), 'bnVsbA', Buffer.from('[1,2]').toString('base64url'), 'e30'])(
    'refuses garbage %j',
    (cursor) => rejects(cursor),
  );
});
