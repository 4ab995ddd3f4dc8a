/** An API key: only its hash is stored. */
export { ApiKeyEntity } from './entities/api-key.entity';
/** A registered webhook; deletion is soft, so the delivery log keeps its reference. */
export { WebhookEntity } from './entities/webhook.entity';
/** An encrypted signing secret of a webhook, current or previous, and what issued it. */
export { WebhookSecretEntity, type SecretState, type SecretTrigger } from './entities/webhook-secret.entity';
/** An audit event: the outbox row the relay publishes, and the project's history. */
export { AuditEventEntity } from './entities/audit-event.entity';
/** One event to one webhook in the delivery log, and its states. */
export { DELIVERY_STATUSES, DeliveryEntity, type DeliveryStatus } from './entities/delivery.entity';
/** A rotation policy: a webhook's own, or the project default. */
export { RotationPolicyEntity } from './entities/rotation-policy.entity';
/** API keys, looked up by hash only. */
export { ApiKeysRepository, type ApiKeyPrincipal } from './repositories/api-keys.repository';
/** Live webhooks, the project's counter rows, and the create and rotate database functions. */
export { WebhooksRepository, webhookFromRow, type WebhookChanges } from './repositories/webhooks.repository';
/** Encrypted signing secrets: the signing set, expiry, re-encryption. */
export { WebhookSecretsRepository, type NewSecretRow } from './repositories/webhook-secrets.repository';
/** The delivery log and the bookkeeping of attempts. */
export {
  DeliveriesRepository,
  type NewDelivery,
  type Subscriber,
  type ClaimedDelivery,
  type AttemptOutcome,
  type DeliveryLogFilter,
} from './repositories/deliveries.repository';
/** Rotation policies, the per-webhook schedule, and the set-based statements of a sweep batch. */
export {
  RotationRepository,
  MAX_PREVIOUS_SECRETS,
  type DroppedSecret,
  type PolicyScope,
  type RotationSchedule,
  type DueRotation,
  type OutgoingSecret,
  type NewScheduledSecret,
  type GovernedWebhook,
} from './repositories/rotation.repository';
/** The audit outbox (relay lane, unpublished rows) and the project's history. */
export {
  AuditEventsRepository,
  type NewAuditEvent,
  type UnpublishedAuditEvent,
  type AuditHistoryQuery,
  type AuditHistoryRow,
} from './repositories/audit-events.repository';
/** Idempotency keys: claim first, then the sealed response. */
export {
  IdempotencyKeysRepository,
  type SealedResponse,
  type IdempotencyRecord,
} from './repositories/idempotency-keys.repository';
/** The counts the API's metrics read from Postgres (outbox backlog, retained history). */
export { MetricsRepository, type OutboxBacklog } from './repositories/metrics.repository';
/** Transactions and the repositories bound to them. */
export { Database, Repositories } from './database.service';
/**
 * Named prepared statements (each named by a digest of its text) and the runner that prepares them per
 * connection.
 */
export { StatementRunner, type NamedStatement, type StatementOptions } from './statements';
/** The Nest module providing {@link Database}. */
export { PersistenceModule } from './persistence.module';
/** Connects to Postgres in the background when it is unreachable at start. */
export { DatabaseConnector } from './database.connector';
/** Data source construction, shared by the app, the CLI and the TypeORM CLI. */
export { dataSourceOptions, createDataSource, ENTITIES, MIGRATIONS } from './data-source';
/** TypeORM's data source and query runner types, for code that is handed one (this lib alone imports TypeORM). */
export type { DataSource, QueryRunner } from 'typeorm';
/** Database creation and migrations. */
export { ensureDatabase, runMigrations } from './database-admin';
/** Classifies errors that mean Postgres is unreachable. */
export { isDatabaseUnavailableError } from './unavailable';
/** The feed of API key changes (Postgres LISTEN), for caches of key lookups. */
export { ApiKeyChangeListener, type ApiKeyChangeHandler } from './notifications/api-key-change.listener';
/** Waits, after an API key change, until every API replica has applied it. */
export {
  ApiKeyChangeBarrier,
  API_KEY_CHANGED_CHANNEL,
  API_KEY_CHANGE_APPLIED_CHANNEL,
  API_KEY_LISTENER_APPLICATION,
  type KeyChangeConfirmation,
} from './notifications/api-key-change.barrier';
