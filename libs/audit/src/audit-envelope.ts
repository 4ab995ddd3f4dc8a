import type { AuditEvent } from './audit-event.types';

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

/** The stored envelope (as read back from jsonb) with its fields in the documented order. */
export function toAuditEvent(stored: Record<string, unknown>): AuditEvent {
  const out: Record<string, unknown> = {};
  for (const k of ENVELOPE_KEYS) out[k] = stored[k] ?? null;
  return out as unknown as AuditEvent;
}
