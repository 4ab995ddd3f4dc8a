import type { LoggerService } from '@nestjs/common';
import pino, { type DestinationStream, type Logger } from 'pino';
import { ConfigError, loadConfig, type AppConfig } from './config.schema';
import { LOG_REDACTION } from './logging.module';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Nest's calls put the context last (and, for errors, the stack before it): `log(message, context)`; an object
 * of fields comes with its message after it, as the application logger (nestjs-pino) takes it:
 * `warn({ reason }, 'message', context)`.
 */
function emit(logger: Logger, level: Level, message: unknown, params: unknown[]): void {
  const rest = [...params];
  const context = rest.length > 0 && typeof rest[rest.length - 1] === 'string' ? rest.pop() : undefined;
  const isFields = typeof message === 'object' && message !== null && !(message instanceof Error);
  const stack = level === 'error' && !isFields && typeof rest[0] === 'string' ? rest[0] : undefined;
  const fields = { ...(context ? { context } : {}), ...(stack ? { stack } : {}) };
  if (message instanceof Error) logger[level]({ ...fields, err: message }, message.message);
  else if (typeof message === 'object' && message !== null) {
    if (typeof rest[0] === 'string') logger[level]({ ...fields, ...message }, rest[0]);
    else logger[level]({ ...fields, ...message });
  } else logger[level](fields, String(message));
}

/**
 * The logger a process starts with, until the application's pino logger takes over: pino too, on stdout and
 * in the same line format, so that what is logged before that (or instead of it, when the application cannot
 * start) reads like everything else. `level` is LOG_LEVEL once the configuration is read.
 */
export function bootLogger(
  level = 'info',
  destination: DestinationStream = pino.destination({ dest: 1, sync: true }),
): LoggerService {
  // Redacted like the application logger: an object logged at boot passes the same safety net.
  const logger = pino({ level, redact: LOG_REDACTION }, destination);
  return {
    log: (message: unknown, ...params: unknown[]) => emit(logger, 'info', message, params),
    error: (message: unknown, ...params: unknown[]) => emit(logger, 'error', message, params),
    warn: (message: unknown, ...params: unknown[]) => emit(logger, 'warn', message, params),
    debug: (message: unknown, ...params: unknown[]) => emit(logger, 'debug', message, params),
    verbose: (message: unknown, ...params: unknown[]) => emit(logger, 'trace', message, params),
    fatal: (message: unknown, ...params: unknown[]) => emit(logger, 'fatal', message, params),
  };
}

/** Logged by every process that would encrypt or decrypt secrets under the development key. */
export const DEVELOPMENT_KEY_WARNING =
  'secrets are encrypted with the fixed, public DEVELOPMENT key (SECRETS_ENCRYPTION_KEYS is not set, or has it first). Never run production like this.';

/** Below this length the queue dashboard's token is warned about at boot. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/** The configuration choices an operator must not miss, one warning each. */
export function configWarnings(config: AppConfig): string[] {
  const warnings: string[] = [];
  if (config.secrets.usingDevelopmentKey) {
    warnings.push(DEVELOPMENT_KEY_WARNING);
  }
  if (config.targets.allowCidrs.length > 0) {
    warnings.push(
      `TARGET_ALLOW_CIDRS lets webhooks and deliveries reach non-public ranges: ${config.targets.allowCidrs.join(', ')}`,
    );
  }
  if (config.admin.token !== null && config.admin.token.length < MIN_ADMIN_TOKEN_LENGTH) {
    warnings.push(
      `ADMIN_TOKEN is shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters: a short bearer token for the queue dashboard can be guessed`,
    );
  }
  return warnings;
}

/**
 * Ends the process with exit code 1 and the reason, the way a failed start does, if `check` rejects: one line
 * naming the problem, without a stack trace (the check's message is the whole story, e.g. a bad REDIS_URL).
 * Resolves once `check` has passed, for a process that waits for it before going on.
 */
export function exitOnFatal(name: string, check: Promise<void>): Promise<void> {
  return check.catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    bootLogger().error(`${name} cannot start: ${err.message}`, undefined, name);
    process.exit(1);
  });
}

/**
 * Runs a process's `main` with its configuration. Invalid configuration is listed on stderr and the process
 * exits 1; when `main` fails (e.g. the port is taken) the reason is logged as one JSON line and the process
 * exits 1, instead of Node's raw unhandled-rejection dump. (Postgres or Redis being unreachable is not such a
 * failure: the processes start, report not ready, and connect when they answer.)
 */
export function runMain(name: string, main: (config: AppConfig) => Promise<void>): void {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  main(config).catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    bootLogger().error(`${name} cannot start: ${err.message}`, err.stack, name);
    process.exit(1);
  });
}
