import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { bootLogger, configWarnings, exitOnSignals, exitOnFatal, runMain, type AppConfig } from '@app/config';
import { verifyRedisDatabase } from '@app/queue';
import { API_APP_OPTIONS, apiAdapter, configureApiApp } from './api.app';
import { ApiModule } from './api.module';

async function main(config: AppConfig): Promise<void> {
  // In the background: the API starts and answers 503 while Redis is down, but not on the wrong database.
  void exitOnFatal('api', verifyRedisDatabase(config.redis));
  const app = configureApiApp(
    await NestFactory.create<NestFastifyApplication>(ApiModule, apiAdapter(config.http), {
      ...API_APP_OPTIONS,
      logger: bootLogger(config.log.level),
    }),
    config,
  );
  // After configureApiApp: through the application's pino logger, as JSON like every other line.
  const logger = new Logger('api');
  for (const warning of configWarnings(config)) logger.warn(warning);
  // SIGTERM: the server stops accepting connections and answers 503 on kept-alive ones, in-flight requests
  // finish, then the Postgres and Redis pools close.
  exitOnSignals(app, logger);
  // A port that is taken or an address this machine does not have is a bad PORT or HOST: said in one line
  // naming them, without a stack trace.
  const { host, port } = config.http;
  await exitOnFatal(
    'api',
    app.listen(port, host).then(
      () => undefined,
      (e: unknown) => {
        const reason = e instanceof Error ? e.message : String(e);
        throw new Error(`cannot listen on HOST ${host}, PORT ${port}: ${reason}`);
      },
    ),
  );
  // The address really bound: with PORT=0 the system picks the port.
  const bound = app.getHttpServer().address();
  if (typeof bound === 'object' && bound !== null) {
    const address = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    logger.log(`listening on ${address}:${bound.port}`);
  } else logger.log(`listening on ${host}:${port}`);
}

if (require.main === module) runMain('api', main);
