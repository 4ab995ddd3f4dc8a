/** Entities: the persisted shapes. */
export { ApiKeyEntity } from './entities/api-key.entity';
export { WebhookEntity } from './entities/webhook.entity';
export { WebhookSecretEntity, type SecretState, type SecretTrigger } from './entities/webhook-secret.entity';
export { AuditEventEntity } from './entities/audit-event.entity';
/** Repositories with intention-named methods. */
export { ApiKeysRepository, type ApiKeyPrincipal } from './repositories/api-keys.repository';
export { WebhooksRepository, type WebhookChanges } from './repositories/webhooks.repository';
export { WebhookSecretsRepository } from './repositories/webhook-secrets.repository';
export { AuditEventsRepository, type NewAuditEvent } from './repositories/audit-events.repository';
export {
  IdempotencyKeysRepository,
  type IdempotencyRecord,
} from './repositories/idempotency-keys.repository';
export { MetricsRepository, type OutboxBacklog } from './repositories/metrics.repository';
/** Transactions and the repositories bound to them. */
export { Database, Repositories } from './database.service';
/** The Nest module providing {@link Database}. */
export { PersistenceModule } from './persistence.module';
/** Data source construction, shared by the app, the CLI and the TypeORM CLI. */
export { dataSourceOptions, createDataSource, ENTITIES, MIGRATIONS } from './data-source';
/** Database creation and migrations. */
export { ensureDatabase, runMigrations, migrationsApplied } from './database-admin';
/** Classifies errors that mean Postgres is unreachable. */
export { isDatabaseUnavailableError } from './unavailable';
