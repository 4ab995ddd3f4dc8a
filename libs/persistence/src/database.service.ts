import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { ApiKeysRepository } from './repositories/api-keys.repository';
import { AuditEventsRepository } from './repositories/audit-events.repository';
import { WebhookSecretsRepository } from './repositories/webhook-secrets.repository';
import { WebhooksRepository } from './repositories/webhooks.repository';

/** The repositories, bound to one transaction (or to the pool, outside a transaction). */
export class Repositories {
  readonly webhooks: WebhooksRepository;
  readonly secrets: WebhookSecretsRepository;
  readonly auditEvents: AuditEventsRepository;
  readonly apiKeys: ApiKeysRepository;

  constructor(readonly manager: EntityManager) {
    this.webhooks = new WebhooksRepository(manager);
    this.secrets = new WebhookSecretsRepository(manager);
    this.auditEvents = new AuditEventsRepository(manager);
    this.apiKeys = new ApiKeysRepository(manager);
  }
}

/** Entry point to persistence: run work in a transaction, or read outside one. */
@Injectable()
export class Database {
  /** Repositories on the pool, for single-statement reads and writes. */
  readonly repos: Repositories;

  constructor(readonly dataSource: DataSource) {
    this.repos = new Repositories(dataSource.manager);
  }

  /** Runs `work` in one READ COMMITTED transaction: everything it writes commits together or not at all. */
  async transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work(new Repositories(manager)));
  }

  /** Round-trips to Postgres; throws when it is unreachable. */
  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }
}
