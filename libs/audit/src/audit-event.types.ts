/** Version of the audit event envelope; bumped only on an incompatible change. */
export const AUDIT_EVENT_VERSION = 1;

/** Who made a change. `id` is the API key id for `api_key`, a process or operator label otherwise. */
export type Actor =
  | { type: 'api_key'; id: string }
  | { type: 'scheduler'; id: string | null }
  | { type: 'admin'; id: string | null }
  | { type: 'system'; id: string | null };

/** One changed field of a webhook update. */
export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

/** The `data` of each audit event type. Never a secret or an API key: fingerprints only. */
export interface AuditDataMap {
  'webhook.created': {
    url: string;
    description: string | null;
    subscribed_events: string[];
    enabled: boolean;
    fingerprint: string;
  };
  'webhook.updated': { changes: FieldChange[] };
  'webhook.deleted': { secrets_destroyed: number };
  'webhook.secret.rotated': {
    trigger: 'manual' | 'scheduled';
    fingerprint: string;
    previous_fingerprint: string | null;
    previous_expires_at: string | null;
    superseded_unclaimed_fingerprint?: string;
    /** Scheduled rotations: the due time this rotation served (each due time is served exactly once). */
    due_at?: string;
  };
  'webhook.secret.claimed': { fingerprint: string };
  'webhook.secret.previous_expired': { fingerprint: string; expired_at: string };
  'webhook.secret.previous_revoked': { fingerprints: string[]; revoked: number };
  'webhook.secret.rotation_due': { due_at: string; policy: 'webhook' | 'project' };
  'webhook.rotation_policy.set': {
    scope: 'webhook' | 'project';
    interval_days: number;
    grace_period_hours: number;
    /** For a project default that no webhook follows yet: now plus the interval, as its GET shows. */
    next_rotation_at: string;
  };
  'webhook.rotation_policy.removed': { scope: 'webhook' | 'project' };
  // `rule` is the first of `rules` (every rule the URL broke), for consumers that read one.
  'webhook.url_rejected': {
    operation: 'create' | 'update';
    host: string | null;
    rule: string;
    rules: string[];
  };
  'api_key.created': { api_key_id: string; name: string | null };
  'api_key.revoked': { api_key_id: string };
}

/** Every audit event type. */
export type AuditEventType = keyof AuditDataMap;

/** The audit event as published on the stream and served by `GET /v1/audit-events`. */
export interface AuditEvent<T extends AuditEventType = AuditEventType> {
  id: string;
  version: typeof AUDIT_EVENT_VERSION;
  type: T;
  occurred_at: string;
  project_id: string;
  webhook_id: string | null;
  actor: Actor;
  request_id: string | null;
  data: AuditDataMap[T];
}

/** Every audit event type, for filters and validation. */
export const AUDIT_EVENT_TYPES: readonly AuditEventType[] = [
  'webhook.created',
  'webhook.updated',
  'webhook.deleted',
  'webhook.secret.rotated',
  'webhook.secret.claimed',
  'webhook.secret.previous_expired',
  'webhook.secret.previous_revoked',
  'webhook.secret.rotation_due',
  'webhook.rotation_policy.set',
  'webhook.rotation_policy.removed',
  'webhook.url_rejected',
  'api_key.created',
  'api_key.revoked',
];
