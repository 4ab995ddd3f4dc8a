/** Typed configuration schema, its loader and the error listing every invalid variable. */
export { loadConfig, ConfigError, type AppConfig, type EncryptionKey, type RedisSeed } from './config.schema';

/** Nest module and injection token that provide the configuration. */
export { ConfigModule, APP_CONFIG } from './config.module';
/** Structured logging (pino) shared by the API and the worker, with redaction of secrets and keys. */
export { LoggingModule, LOG_DESTINATION, REDACTED_LOG_PATHS, CREDENTIAL_HEADERS } from './logging.module';

/** Closes a Nest application on SIGTERM/SIGINT within a deadline, then exits. */
export { exitOnSignals } from './graceful-exit';

/** The JSON logger of a starting process, and the configuration warnings every process logs at boot. */
export { bootLogger, configWarnings, exitOnFatal, runMain, DEVELOPMENT_KEY_WARNING } from './boot-logging';
