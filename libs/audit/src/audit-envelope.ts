import type { Actor, AuditDataMap, AuditEvent, AuditEventType } from './audit-event.types';

// The envelope's documented field order; jsonb storage forgets key order, so it is restored on the way out.
const ENVELOPE_KEYS = [
  'id',
  'version',
  'type',
  'occurred_at',
  'project_id',
  'webhook_id',
  'actor',
  'request_id',
  'data',
] as const;

// The documented order inside the envelope too: `actor` is `{type, id}`, each entry of `webhook.updated`'s
// `changes` is `{field, from, to}`, and each type's `data` has its fields in the order of `AuditDataMap` (that
// of operations.md for `webhook.secret.rotated`). Fields not listed (none today) follow in their stored order.
const ACTOR_KEYS: readonly (keyof Actor)[] = ['type', 'id'];
const CHANGE_KEYS = ['field', 'from', 'to'] as const;
const DATA_KEYS: { [T in AuditEventType]: readonly (keyof AuditDataMap[T])[] } = {
  'webhook.created': ['url', 'description', 'subscribed_events', 'enabled', 'fingerprint'],
  'webhook.updated': ['changes'],
  'webhook.deleted': ['secrets_destroyed'],
  'webhook.secret.rotated': [
    'trigger',
    'fingerprint',
    'previous_fingerprint',
    'previous_expires_at',
    'superseded_unclaimed_fingerprint',
    'due_at',
  ],
  'webhook.secret.claimed': ['fingerprint'],
  'webhook.secret.previous_expired': ['fingerprint', 'expired_at'],
  'webhook.secret.previous_revoked': ['fingerprints', 'revoked'],
  'webhook.secret.rotation_due': ['due_at', 'policy'],
  'webhook.rotation_policy.set': ['scope', 'interval_days', 'grace_period_hours', 'next_rotation_at'],
  'webhook.rotation_policy.removed': ['scope'],
  'webhook.url_rejected': ['operation', 'host', 'rule', 'rules'],
  'api_key.created': ['api_key_id', 'name'],
  'api_key.revoked': ['api_key_id'],
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `value` with the `keys` present in it first, in that order, then its other keys as they were. */
function ordered(value: unknown, keys: readonly PropertyKey[]): unknown {
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (typeof k === 'string' && k in value) out[k] = value[k];
  for (const [k, v] of Object.entries(value)) if (!(k in out)) out[k] = v;
  return out;
}

function orderedData(type: unknown, data: unknown): unknown {
  const keys = typeof type === 'string' ? DATA_KEYS[type as AuditEventType] : undefined;
  if (!keys || !isObject(data)) return data;
  const out = ordered(data, keys) as Record<string, unknown>;
  if (type === 'webhook.updated' && Array.isArray(out.changes))
    out.changes = out.changes.map((c) => ordered(c, CHANGE_KEYS));
  return out;
}

/** The stored envelope (as read back from jsonb) with its fields, and those of its parts, in the documented order. */
export function toAuditEvent(stored: Record<string, unknown>): AuditEvent {
  const out: Record<string, unknown> = {};
  for (const k of ENVELOPE_KEYS) out[k] = stored[k] ?? null;
  out.actor = ordered(out.actor, ACTOR_KEYS);
  out.data = orderedData(out.type, out.data);
  return out as unknown as AuditEvent;
}
