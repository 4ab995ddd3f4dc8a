/**
 * Typed configuration schema, its loader, the error listing every invalid variable, and the longest Retry-After and
 * the jitter of delivery retries, which its check of DELIVERY_RETRY_SCHEDULE counts with.
 */
export {
  loadConfig,
  ConfigError,
  MAX_RETRY_AFTER_SECONDS,
  RETRY_JITTER,
  type AppConfig,
  type EncryptionKey,
  type RedisSeed,
} from './config.schema';

/** Nest module and injection token that provide the configuration. */
export { ConfigModule, APP_CONFIG } from './config.module';
/**
 * Structured logging (pino) shared by the API and the worker, with redaction of secrets and keys (`LOG_REDACTION`,
 * the paths and censor every process's logger uses).
 */
export {
  LoggingModule,
  LOG_DESTINATION,
  LOG_REDACTION,
  REDACTED_LOG_PATHS,
  CREDENTIAL_HEADERS,
} from './logging.module';
/**
 * Blanking of what is shaped like an API key or a signing secret wherever a client put it (a URL, a header, a
 * description), shared by the request log and the audit events.
 */
export {
  CREDENTIAL_CENSOR,
  holdsCredentialLike,
  blankCredentialLike,
  blankCredentialLikeInUrlPart,
  blankCredentialLikeInUrlPath,
} from './credential-redaction';

/** Closes a Nest application on SIGTERM/SIGINT within a deadline, then exits. */
export { exitOnSignals } from './graceful-exit';

/** The JSON logger of a starting process, and the configuration warnings every process logs at boot. */
export { bootLogger, configWarnings, exitOnFatal, runMain, DEVELOPMENT_KEY_WARNING } from './boot-logging';
