/** Audit event envelope, its types, actors and per-type data. */
export {
  AUDIT_EVENT_VERSION,
  AUDIT_EVENT_TYPES,
  type Actor,
  type AuditEvent,
  type AuditEventType,
  type AuditDataMap,
  type FieldChange,
} from './audit-event.types';
/** The outbox writer and the envelope builder. */
export { AuditRecorder, buildAuditEvent, type AuditInput } from './audit-recorder';
