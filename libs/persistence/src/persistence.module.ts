import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { dataSourceOptions } from './data-source';
import { Database } from './database.service';
import { ApiKeyChangeBarrier } from './notifications/api-key-change.barrier';

/** Postgres through TypeORM: the data source and the {@link Database} entry point. */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        ...dataSourceOptions(config.database.url, config.database.poolSize),
        // Boot waits for a database that is still starting (compose, CI) instead of failing at once.
        retryAttempts: 20,
        retryDelay: 1500,
      }),
    }),
  ],
  providers: [Database, ApiKeyChangeBarrier],
  exports: [Database, ApiKeyChangeBarrier],
})
export class PersistenceModule {}
