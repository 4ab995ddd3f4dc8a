/** Error model: every deliberate failure carries a stable code. */
export * from './errors';
/** The injectable time source, and a manual one for tests. */
export { Clock, SystemClock, ManualClock } from './clock';
/** Id generators and shape checks. */
export { newWebhookId, newEventId, newApiKeyId, newUuid, isPrefixedUlid } from './ids';
/** Who is asking, for which project. */
export type { RequestContext } from './request-context';
/** Work that commits in the transaction of a change (the first response of an Idempotency-Key). */
export type { CommitWith } from './commit-with';
/** Deletes in bounded batches until a batch comes back short (retention and expiry jobs). */
export { inBatches } from './in-batches';
/** Secret material, encryption at rest and the secret lifecycle. */
export { generateSecret, fingerprint } from './secrets/secret-material';
export { SecretCipher, idempotentResponseAad, type SealedSecret } from './secrets/secret-cipher';
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
export { redactUrl } from './webhooks/webhook-url-redaction';
/** Deliveries: test events, fan-out of published events, the delivery log and the retry schedule. */
export {
  DeliveriesService,
  type PublishedEvent,
  type DeliveryLogQuery,
  type DeliveryLogPage,
} from './deliveries/deliveries.service';
export { retryDelayMs, MAX_RETRY_AFTER_SECONDS } from './deliveries/retry-schedule';
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
/** Rotation policies, claim/status/revoke of secrets, the scheduled sweep and its pure date rules. */
export {
  RotationService,
  type SetRotationPolicyInput,
  type RotationPolicyView,
  type SecretStatusView,
} from './rotation/rotation.service';
export {
  RotationSweepService,
  SWEEP_BATCH,
  SWEEP_LANES,
  type SweepResult,
} from './rotation/rotation-sweep.service';
export {
  rotationAnchor,
  nextRotationAt,
  isRotationDue,
  previousExpiresAt,
  noticeHorizon,
} from './rotation/rotation-schedule';
/** The project's audit history with opaque, tamper-evident cursors. */
export {
  AuditHistoryService,
  type AuditHistoryInput,
  type AuditHistoryPage,
} from './audit/audit-history.service';
export { AuditCursorCodec, type AuditCursorPosition, type AuditCursorScope } from './audit/audit-cursor';
/** The Nest module providing all of the above. */
export { DomainModule } from './domain.module';
