import { Global, Module } from '@nestjs/common';
import { loadConfig, type AppConfig } from './config.schema';

/** Injection token of the typed {@link AppConfig}. */
export const APP_CONFIG = Symbol('APP_CONFIG');

/** Provides the validated configuration to every module; parsed once per process. */
@Global()
@Module({
  providers: [{ provide: APP_CONFIG, useFactory: (): AppConfig => loadConfig() }],
  exports: [APP_CONFIG],
})
export class ConfigModule {}
