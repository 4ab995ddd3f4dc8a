import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { exitOnSignals, ConfigError, loadConfig, type AppConfig } from '@app/config';
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
  // SIGTERM: the server stops accepting connections and answers 503 on kept-alive ones, in-flight requests
  // finish, then the Postgres and Redis pools close.
  exitOnSignals(app, logger);
  await app.listen(config.http.port, config.http.host);
  logger.log(`listening on ${config.http.host}:${config.http.port}`);
}

if (require.main === module) void main();
