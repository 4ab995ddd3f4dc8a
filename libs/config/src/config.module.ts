import { Global, Module } from '@nestjs/common';
import { loadConfig, type AppConfig } from './config.schema';

/** Injection token of the typed {@link AppConfig}. */
export const APP_CONFIG = Symbol('APP_CONFIG');

/**
 * Provides the validated configuration to every module, parsed from the environment when the module is built. The
 * entry points (`runMain`, the CLI) have parsed the same environment once already, to refuse a bad configuration
 * with the list of its problems before Nest starts; the two parses read the same variables, so they agree.
 */
@Global()
@Module({
  providers: [{ provide: APP_CONFIG, useFactory: (): AppConfig => loadConfig() }],
  exports: [APP_CONFIG],
})
export class ConfigModule {}
