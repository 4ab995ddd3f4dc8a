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
export { AuditRecorder, buildAuditEvent, type AuditInput } from './audit.recorder';
/** The stored envelope restored to its documented field order. */
export { toAuditEvent } from './audit-envelope';
/** Monotonic ULID generators with a pooled cryptographic random source (every prefixed id of the service). */
export { ulidGenerator } from './ulid';
/** The after-commit wake-up of the relay, and the channel it travels on. */
export { AuditRelaySignal, auditRelayChannel } from './audit-relay.signal';
/** Appends events to the audit Redis stream (used by the relay). */
export { AuditStreamPublisher } from './audit-stream.publisher';
/**
 * The consumer-group subscriber of the audit stream, its reply parsers, the order of stream entry ids, and where
 * the consumer groups of a stream stand.
 */
export {
  AuditStreamSubscriber,
  RecentIds,
  decodeEntry,
  entriesOfReadReply,
  parseAutoClaimReply,
  type AuditEventHandler,
  type AuditStreamEntry,
  type AuditSubscriberOptions,
  compareStreamIds,
  consumerGroups,
  type ConsumerGroupPosition,
} from './audit-stream.subscriber';
/** The throwaway consumer groups of `audit tail`, and the removal of those killed tails left behind. */
export {
  TAIL_HEARTBEAT_EVERY_MS,
  TAIL_HEARTBEAT_TTL_MS,
  THROWAWAY_TAIL_GROUP,
  removeAbandonedTailGroups,
  tailHeartbeatKey,
  throwawayTailGroup,
} from './tail-groups';
