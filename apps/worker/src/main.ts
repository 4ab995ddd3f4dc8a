import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoLogger } from 'nestjs-pino';
import { bootLogger, configWarnings, exitOnSignals, exitOnFatal, runMain, type AppConfig } from '@app/config';
import { verifyRedisDatabase } from '@app/queue';
import { WorkerModule } from './worker.module';

async function main(config: AppConfig): Promise<void> {
  // In the background: the worker waits for Redis to answer, but does not run on the wrong database.
  exitOnFatal('worker', verifyRedisDatabase(config.redis.url));
  // Not buffered: while Postgres or Redis does not answer, the start waits for them and says so as it goes.
  const app = await NestFactory.createApplicationContext(WorkerModule, { logger: bootLogger() });
  app.useLogger(app.get(PinoLogger));
  const logger = new Logger('worker');
  for (const warning of configWarnings(config)) logger.warn(warning);
  // SIGTERM: every BullMQ worker stops taking jobs and waits for its running ones (a job cut short by a crash
  // returns to the queue once its lock expires, and every job is idempotent), schedulers stop, pools close.
  exitOnSignals(app, logger);
  logger.log('worker started');
}

if (require.main === module) runMain('worker', main);
