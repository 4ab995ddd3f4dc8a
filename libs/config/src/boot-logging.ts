import { ConsoleLogger, type LoggerService } from '@nestjs/common';
import { ConfigError, loadConfig, type AppConfig } from './config.schema';

/**
 * The logger a process starts with, until the application's pino logger takes over: JSON lines too, so that
 * what is logged before that (or instead of it, when the application cannot start, e.g. Postgres is
 * unreachable) is as structured as everything else.
 */
export function bootLogger(): LoggerService {
  return new ConsoleLogger({ json: true, colors: false });
}

/** Logged by every process that would encrypt or decrypt secrets under the development key. */
export const DEVELOPMENT_KEY_WARNING =
  'SECRETS_ENCRYPTION_KEYS is not set: secrets are encrypted with the fixed DEVELOPMENT key. Never run production like this.';

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
