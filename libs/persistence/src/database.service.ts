import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { migrationsApplied } from './database-admin';
import { ApiKeysRepository } from './repositories/api-keys.repository';
import { AuditEventsRepository } from './repositories/audit-events.repository';
import { DeliveriesRepository } from './repositories/deliveries.repository';
import { RotationRepository } from './repositories/rotation.repository';
import { IdempotencyKeysRepository } from './repositories/idempotency-keys.repository';
import { MetricsRepository } from './repositories/metrics.repository';
import { WebhookSecretsRepository } from './repositories/webhook-secrets.repository';
import { WebhooksRepository } from './repositories/webhooks.repository';
import { StatementRunner, type StatementOptions } from './statements';

/** The repositories, bound to one transaction (or to the pool, outside a transaction). */
export class Repositories {
  readonly webhooks: WebhooksRepository;
  readonly secrets: WebhookSecretsRepository;
  readonly auditEvents: AuditEventsRepository;
  readonly apiKeys: ApiKeysRepository;
  readonly deliveries: DeliveriesRepository;
  readonly rotation: RotationRepository;
  readonly idempotencyKeys: IdempotencyKeysRepository;
  readonly metrics: MetricsRepository;

  /** Callbacks to run once the transaction has committed (never when it rolls back). */
  readonly committed: (() => void)[] = [];

  constructor(
    readonly manager: EntityManager,
    /** False for the pool-bound instance: there, every statement commits at once. */
    readonly inTransaction = true,
    /** How the hot reads send their statements; in a transaction they are always plain. */
    statementOptions: StatementOptions = { prepared: false },
  ) {
    const statements = new StatementRunner(manager, statementOptions);
    this.webhooks = new WebhooksRepository(manager, statements);
    this.secrets = new WebhookSecretsRepository(manager);
    this.auditEvents = new AuditEventsRepository(manager);
    this.apiKeys = new ApiKeysRepository(manager, statements);
    this.deliveries = new DeliveriesRepository(manager);
    this.rotation = new RotationRepository(manager);
    this.idempotencyKeys = new IdempotencyKeysRepository(manager);
    this.metrics = new MetricsRepository(manager);
  }

  /**
   * Runs `fn` after the commit (for example: wake the audit relay, enqueue a delivery). Outside a
   * transaction it runs at once. `fn` must not throw; it is best-effort by nature, since the commit is done.
   */
  afterCommit(fn: () => void): void {
    if (this.inTransaction) this.committed.push(fn);
    else fn();
  }
}

/** Entry point to persistence: run work in a transaction, or read outside one. */
@Injectable()
export class Database {
  /** Repositories on the pool, for single-statement reads and writes. */
  readonly repos: Repositories;

  private readonly logger = new Logger('Database');

  constructor(
    readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.repos = new Repositories(dataSource.manager, false, {
      prepared: config.database.preparedStatements,
      onLostStatements: (e) =>
        this.logger.warn(
          `Postgres lost a named prepared statement (${(e as Error).message}): the connections are shared between ` +
            'statements, as behind a transaction-mode pooler; reads fall back to plain statements, and ' +
            'DATABASE_PREPARED_STATEMENTS=false spares them the failed attempt',
        ),
    });
  }

  /** Runs `work` in one READ COMMITTED transaction: everything it writes commits together or not at all. */
  async transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    let tx: Repositories | undefined;
    const result = await this.dataSource.transaction((manager) => work((tx = new Repositories(manager))));
    for (const fn of tx?.committed ?? []) {
      try {
        fn();
      } catch {
        // The change is committed; an after-commit hook is an optimisation that a poller backs up.
      }
    }
    return result;
  }

  /** Round-trips to Postgres; throws when it is unreachable. */
  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  /** Whether every migration this build knows is applied (reads only); throws when Postgres is unreachable. */
  migrationsApplied(): Promise<boolean> {
    return migrationsApplied(this.dataSource);
  }
}
