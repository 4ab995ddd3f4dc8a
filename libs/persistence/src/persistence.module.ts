import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { dataSourceOptions } from './data-source';
import { DatabaseConnector } from './database.connector';
import { Database } from './database.service';
import { ApiKeyChangeBarrier } from './notifications/api-key-change.barrier';

/** Postgres through TypeORM: the data source and the {@link Database} entry point. */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        ...dataSourceOptions(
          config.database.url,
          config.database.poolSize,
          config.database.statementTimeoutMs,
        ),
        // Connected by DatabaseConnector, so that boot does not wait for (or fail without) Postgres.
        manualInitialization: true,
      }),
    }),
  ],
  providers: [Database, DatabaseConnector, ApiKeyChangeBarrier],
  exports: [Database, DatabaseConnector, ApiKeyChangeBarrier],
})
export class PersistenceModule {}
