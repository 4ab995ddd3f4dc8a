import pg from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { checkClientConnection, clientWithAnswerDeadline } from './answer-deadline';
import { ApiKeyEntity } from './entities/api-key.entity';
import { AuditEventEntity } from './entities/audit-event.entity';
import { DeliveryEntity } from './entities/delivery.entity';
import { RotationPolicyEntity } from './entities/rotation-policy.entity';
import { WebhookSecretEntity } from './entities/webhook-secret.entity';
import { WebhookEntity } from './entities/webhook.entity';
import { InitialSchema1763800000000 } from './migrations/1763800000000-initial-schema';
import { ProjectQuotas1764300000000 } from './migrations/1764300000000-project-quotas';
import { RotationPolicies1764000000000 } from './migrations/1764000000000-rotation-policies';
import { Deliveries1764100000000 } from './migrations/1764100000000-deliveries';
import { ApiKeyChangeNotifications1764400000000 } from './migrations/1764400000000-api-key-change-notifications';
import { ProjectQuotaShards1764500000000 } from './migrations/1764500000000-project-quota-shards';
import { RotateSecretFunction1764600000000 } from './migrations/1764600000000-rotate-secret-function';
import { RotateSecretTimeAfterLock1764700000000 } from './migrations/1764700000000-rotate-secret-time-after-lock';
import { WebhookLastChange1764800000000 } from './migrations/1764800000000-webhook-last-change';
import { DeletedWebhooksIndex1764900000000 } from './migrations/1764900000000-deleted-webhooks-index';
import { RotationZeroGraceExpired1765000000000 } from './migrations/1765000000000-rotation-zero-grace-expired';
import { RotationTimeAfterLongWait1765100000000 } from './migrations/1765100000000-rotation-time-after-long-wait';
import { PreviousSecretsBound1765200000000 } from './migrations/1765200000000-previous-secrets-bound';
import { IdempotentResponsesForgetSecrets1765300000000 } from './migrations/1765300000000-idempotent-responses-forget-secrets';
import { AuditHistoryFilterIndexes1765400000000 } from './migrations/1765400000000-audit-history-filter-indexes';
import { DeliveryLogFilterIndexes1765500000000 } from './migrations/1765500000000-delivery-log-filter-indexes';
import { SecretsReplacementOrder1765600000000 } from './migrations/1765600000000-secrets-replacement-order';
import { DeliveryAttemptedAt1765700000000 } from './migrations/1765700000000-delivery-attempted-at';
import { IdempotencyAndMetrics1764200000000 } from './migrations/1764200000000-idempotency-and-metrics';

// Dates sent as query parameters are written in UTC, not in the process's time zone (whose historical offsets
// can have seconds that the wire format drops).
pg.defaults.parseInputDatesAsUTC = true;

/** How often Postgres checks that the client of a running statement is still connected. */
const CLIENT_CHECK_INTERVAL_MS = 1000;
/** How long opening a connection may take: the login, and then the session setup (each). */
const CONNECTION_TIMEOUT_MS = 3000;

/** Every entity, listed explicitly (no globs: the same list works from ts-jest, ts-node and compiled JS). */
export const ENTITIES = [
  ApiKeyEntity,
  WebhookEntity,
  WebhookSecretEntity,
  AuditEventEntity,
  RotationPolicyEntity,
  DeliveryEntity,
];
/** Every migration, in order. */
export const MIGRATIONS = [
  InitialSchema1763800000000,
  RotationPolicies1764000000000,
  Deliveries1764100000000,
  IdempotencyAndMetrics1764200000000,
  ProjectQuotas1764300000000,
  ApiKeyChangeNotifications1764400000000,
  ProjectQuotaShards1764500000000,
  RotateSecretFunction1764600000000,
  RotateSecretTimeAfterLock1764700000000,
  WebhookLastChange1764800000000,
  DeletedWebhooksIndex1764900000000,
  RotationZeroGraceExpired1765000000000,
  RotationTimeAfterLongWait1765100000000,
  PreviousSecretsBound1765200000000,
  IdempotentResponsesForgetSecrets1765300000000,
  AuditHistoryFilterIndexes1765400000000,
  DeliveryLogFilterIndexes1765500000000,
  SecretsReplacementOrder1765600000000,
  DeliveryAttemptedAt1765700000000,
];

/**
 * Options for a data source on `url`. Schema changes only ever come from migrations.
 *
 * `statementTimeoutMs` (the API's and the worker's pools; 0, the default, for migrations and other one-off
 * work, which may legitimately run long) bounds what one request or job can wait on Postgres:
 * - Postgres cancels a statement that runs longer (a lock held elsewhere, an overloaded server), rolling it back;
 * - it ends a session left idle inside a transaction for four times as long (at least a minute), so a client
 *   that stalls mid-transaction does not hold its row locks indefinitely;
 * - the client drops a connection whose query gets no answer at all by then plus up to 5 s (a server that
 *   hangs), see {@link clientWithAnswerDeadline};
 * - Postgres cancels a statement whose client has gone (the process killed mid-request) within a second, where
 *   the server can tell (Postgres 14 or later, on Linux; elsewhere the setting is refused and left off).
 * Each of these fails the query with an error that the HTTP layer answers with 503 and jobs retry.
 */
export function dataSourceOptions(url: string, poolSize = 10, statementTimeoutMs = 0): DataSourceOptions {
  const bounded =
    statementTimeoutMs > 0
      ? {
          statement_timeout: statementTimeoutMs,
          idle_in_transaction_session_timeout: Math.max(4 * statementTimeoutMs, 60_000),
          Client: clientWithAnswerDeadline(statementTimeoutMs + Math.min(statementTimeoutMs, 5000)),
          onConnect: (client: pg.Client) =>
            checkClientConnection(client, CLIENT_CHECK_INTERVAL_MS, CONNECTION_TIMEOUT_MS),
        }
      : {};
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'typeorm_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: {
      max: poolSize,
      // Fail fast while Postgres is away: the request gets a 503 instead of hanging.
      connectionTimeoutMillis: CONNECTION_TIMEOUT_MS,
      idleTimeoutMillis: 30000,
      application_name: 'webhook-secrets',
      ...bounded,
    },
  };
}

/** A data source that is not initialised yet. */
export function createDataSource(url: string, poolSize?: number, statementTimeoutMs?: number): DataSource {
  return new DataSource(dataSourceOptions(url, poolSize, statementTimeoutMs));
}
