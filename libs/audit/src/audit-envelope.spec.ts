import { toAuditEvent } from './audit-envelope';

// What jsonb gives back: keys sorted by length, then bytes, not in the order they were written.
const fromJsonb = (v: unknown): Record<string, unknown> => {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort);
    if (typeof x !== 'object' || x === null) return x;
    const keys = Object.keys(x).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(keys.map((k) => [k, sort((x as Record<string, unknown>)[k])]));
  };
  return sort(v) as Record<string, unknown>;
};

const envelope = (type: string, data: unknown, actor: unknown = { type: 'api_key', id: 'key_1' }) =>
  fromJsonb({
    id: 'aud_1',
    version: 1,
    type,
    occurred_at: '2026-11-22T09:41:07.123Z',
    project_id: 'p',
    webhook_id: 'wh_1',
    actor,
    request_id: 'r',
    data,
  });

describe('toAuditEvent', () => {
  it('puts the envelope, the actor and the data in the documented order', () => {
    const e = toAuditEvent(
      envelope('webhook.secret.rotated', {
        trigger: 'manual',
        fingerprint: 'sha256:a',
        previous_fingerprint: 'sha256:b',
        previous_expires_at: '2026-11-23T09:41:07.123Z',
      }),
    );
    expect(JSON.stringify(e)).toBe(
      '{"id":"aud_1","version":1,"type":"webhook.secret.rotated","occurred_at":"2026-11-22T09:41:07.123Z",' +
        '"project_id":"p","webhook_id":"wh_1","actor":{"type":"api_key","id":"key_1"},"request_id":"r",' +
        '"data":{"trigger":"manual","fingerprint":"sha256:a","previous_fingerprint":"sha256:b",' +
        '"previous_expires_at":"2026-11-23T09:41:07.123Z"}}',
    );
  });

  it('lists each change of an update as field, from, to', () => {
    const e = toAuditEvent(
      envelope('webhook.updated', { changes: [{ field: 'enabled', from: true, to: false }] }),
    );
    expect(JSON.stringify(e.data)).toBe('{"changes":[{"field":"enabled","from":true,"to":false}]}');
  });

  it('keeps fields it does not know, after the known ones, and leaves other shapes alone', () => {
    const e = toAuditEvent(
      envelope('api_key.created', { zz: 1, name: null, api_key_id: 'key_2' }, { id: null, type: 'system' }),
    );
    expect(JSON.stringify(e.actor)).toBe('{"type":"system","id":null}');
    expect(Object.keys(e.data)).toEqual(['api_key_id', 'name', 'zz']);
    expect(toAuditEvent(envelope('unknown.type', { b: 1, a: 2 })).data).toEqual({ b: 1, a: 2 });
  });
});
