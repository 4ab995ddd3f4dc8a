import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ConfigError, loadConfig, type AppConfig } from '@app/config';
import { API_APP_OPTIONS, apiAdapter, configureApiApp } from './api.app';
import { ApiModule } from './api.module';

async function main(): Promise<void> {
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
  const logger = new Logger('api');
  if (config.secrets.usingDevelopmentKey) {
    logger.warn(
      'SECRETS_ENCRYPTION_KEYS is not set: secrets are encrypted with the fixed DEVELOPMENT key. Never run production like this.',
    );
  }
  if (config.targets.allowCidrs.length > 0) {
    logger.warn(
      `TARGET_ALLOW_CIDRS lets webhooks reach non-public ranges: ${config.targets.allowCidrs.join(', ')}`,
    );
  }
  const app = configureApiApp(
    await NestFactory.create<NestFastifyApplication>(ApiModule, apiAdapter(), API_APP_OPTIONS),
    config,
  );
  exitOnSignals(app, logger);
  await app.listen(config.http.port, config.http.host);
  logger.log(`listening on ${config.http.host}:${config.http.port}`);
}

// Longer than a request can take (the slowest is bounded by the 3 s pool timeout plus a transaction), shorter
// than an orchestrator's kill grace period (30 s by default in Kubernetes).
const SHUTDOWN_DEADLINE_MS = 25_000;

/**
 * SIGTERM or SIGINT: Nest closes the application (the server stops accepting connections and answers 503 on kept-alive ones, in-flight requests finish, then the Postgres and Redis pools close), then the process exits 0. A close that hangs past the
 * deadline exits 1 instead of waiting for SIGKILL.
 */
function exitOnSignals(app: { close(): Promise<void> }, logger: Logger): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.log(`${signal}: shutting down`);
      setTimeout(() => {
        logger.error('shutdown did not finish in time');
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS).unref();
      app.close().then(
        () => {
          logger.log('stopped');
          process.exit(0);
        },
        (e: unknown) => {
          logger.error(`shutdown failed: ${(e as Error).message}`);
          process.exit(1);
        },
      );
    });
  }
}

if (require.main === module) void main();
