/** Entities: the persisted shapes. */
export { ApiKeyEntity } from './entities/api-key.entity';
export { WebhookEntity } from './entities/webhook.entity';
export { WebhookSecretEntity, type SecretState, type SecretTrigger } from './entities/webhook-secret.entity';
export { AuditEventEntity } from './entities/audit-event.entity';
export { DELIVERY_STATUSES, DeliveryEntity, type DeliveryStatus } from './entities/delivery.entity';
export { RotationPolicyEntity } from './entities/rotation-policy.entity';
/** Repositories with intention-named methods. */
export { ApiKeysRepository, type ApiKeyPrincipal } from './repositories/api-keys.repository';
export { WebhooksRepository, webhookFromRow, type WebhookChanges } from './repositories/webhooks.repository';
export { WebhookSecretsRepository, type NewSecretRow } from './repositories/webhook-secrets.repository';
export {
  DeliveriesRepository,
  type NewDelivery,
  type Subscriber,
  type ClaimedDelivery,
  type AttemptOutcome,
  type DeliveryLogFilter,
} from './repositories/deliveries.repository';
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
export {
  AuditEventsRepository,
  type NewAuditEvent,
  type UnpublishedAuditEvent,
  type AuditHistoryQuery,
  type AuditHistoryRow,
} from './repositories/audit-events.repository';
export {
  IdempotencyKeysRepository,
  type SealedResponse,
  type IdempotencyRecord,
} from './repositories/idempotency-keys.repository';
export { MetricsRepository, type OutboxBacklog } from './repositories/metrics.repository';
/** Transactions and the repositories bound to them. */
export { Database, Repositories } from './database.service';
/** The Nest module providing {@link Database}. */
export { PersistenceModule } from './persistence.module';
/** Connects to Postgres in the background when it is unreachable at start. */
export { DatabaseConnector } from './database-connector';
/** Data source construction, shared by the app, the CLI and the TypeORM CLI. */
export { dataSourceOptions, createDataSource, ENTITIES, MIGRATIONS } from './data-source';
/** Database creation and migrations. */
export { ensureDatabase, runMigrations, migrationsApplied } from './database-admin';
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
