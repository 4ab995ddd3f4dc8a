/** Error model: every deliberate failure carries a stable code. */
export * from './errors';
/** The injectable time source, and a manual one for tests. */
export { Clock, SystemClock, ManualClock } from './clock';
/** Id generators and shape checks. */
export { newWebhookId, newEventId, newApiKeyId, newUuid, isPrefixedUlid, ULID_PATTERN } from './ids';
/** Who is asking, for which project. */
export type { RequestContext } from './request-context';
/** Work that commits in the transaction of a change (the first response of an Idempotency-Key). */
export type { CommitWith } from './commit-with';
/** Deletes in bounded batches until a batch comes back short (retention and expiry jobs). */
export { inBatches } from './in-batches';
/** Secret material: a new signing secret, and the fingerprint that names it without revealing it. */
export { generateSecret, fingerprint } from './secrets/secret-material';
/** Encryption at rest (AES-256-GCM under the key ring), and the binding of a stored idempotent response. */
export { SecretCipher, idempotentResponseAad, type SealedSecret } from './secrets/secret.cipher';
/** The secret lifecycle: issue, the signing set, destruction, expiry of previous secrets, re-encryption. */
export {
  SecretsService,
  type IssuedSecret,
  type ReencryptResult,
  type UnreadableSecret,
} from './secrets/secrets.service';
/** Webhook use cases. */
export {
  WebhooksService,
  type CreateWebhookInput,
  type UpdateWebhookInput,
  type WebhookWithSecret,
} from './webhooks/webhooks.service';
/** A webhook URL as audit events and logs show it: query and fragment replaced by a marker. */
export { redactUrl } from './webhooks/webhook-url-redaction';
/** Deliveries: test events, fan-out of published events, the delivery log, its retention, lost attempts. */
export {
  DeliveriesService,
  type PublishedEvent,
  type DeliveryLogQuery,
  type DeliveryLogPage,
} from './deliveries/deliveries.service';
/** The wait before each retry of a delivery (the longest `Retry-After` honoured is the configuration's). */
export { retryDelayMs } from './deliveries/retry-schedule';
/** Event bodies as receivers get them, event ids, test event content, and the stream of rejected entries. */
export {
  serializeEventBody,
  eventIdForPublisherId,
  eventIdFromStreamEntry,
  testEventContent,
  type EventBody,
  rejectedEventsStream,
} from './deliveries/event-body';
/** API key use cases. */
export {
  ApiKeysService,
  type CreatedApiKey,
  type ApiKeySummary,
  type ApiKeyChangeObserver,
} from './api-keys/api-keys.service';
/** Rotation policies, and claim, status and revoke of secrets. */
export {
  RotationService,
  type SetRotationPolicyInput,
  type RotationPolicyView,
  type SecretStatusView,
} from './rotation/rotation.service';
/** The scheduled sweep: due rotations and advance notices, in batches over parallel lanes. */
export {
  RotationSweepService,
  SWEEP_BATCH,
  SWEEP_LANES,
  type SweepResult,
} from './rotation/rotation-sweep.service';
/** The pure date rules of scheduled rotation (the sweep's SQL applies the same arithmetic). */
export { rotationAnchor, nextRotationAt, noticeHorizon } from './rotation/rotation-schedule';
/** The project's audit history with opaque, tamper-evident cursors. */
export {
  AuditHistoryService,
  type AuditHistoryInput,
  type AuditHistoryPage,
} from './audit/audit-history.service';
/** The cursors of the audit history: keyset position and scope under an HMAC. */
export {
  AuditCursorCodec,
  type AuditCursorPosition,
  type AuditCursorScope,
} from './audit/audit-cursor.codec';
/** The Nest module providing all of the above. */
export { DomainModule } from './domain.module';
