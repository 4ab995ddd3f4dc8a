import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoLogger } from 'nestjs-pino';
import { bootLogger, configWarnings, exitOnFatal, exitOnSignals, runMain, type AppConfig } from '@app/config';
import { verifyRedisDatabase } from '@app/queue';
import { checkHeartbeatFile } from './health/worker-heartbeat.service';
import { WorkerModule } from './worker.module';

async function main(config: AppConfig): Promise<void> {
  // A heartbeat file that cannot be written would leave the worker running with a health check that never passes.
  await exitOnFatal('worker', checkHeartbeatFile(config.worker.heartbeatFile));
  // Before anything uses Redis: a queue or a scheduler registered in the wrong database would take another
  // deployment's jobs. Waits for Redis like the rest of the start does.
  const waiting = setTimeout(() => {
    bootLogger(config.log.level).warn('waiting for Redis to answer', 'worker');
  }, 3000);
  // A database the server refuses ends the start as the API's does: one line naming it, no stack trace.
  await exitOnFatal(
    'worker',
    verifyRedisDatabase(config.redis).finally(() => clearTimeout(waiting)),
  );
  // Not buffered: while Postgres or Redis does not answer, the start waits for them and says so as it goes.
  const app = await NestFactory.createApplicationContext(WorkerModule, {
    logger: bootLogger(config.log.level),
  });
  app.useLogger(app.get(PinoLogger));
  const logger = new Logger('worker');
  for (const warning of configWarnings(config)) logger.warn(warning);
  // SIGTERM: every BullMQ worker stops taking jobs and waits for its running ones (a job cut short by a crash
  // returns to the queue once its lock expires, and every job is idempotent), schedulers stop, pools close.
  exitOnSignals(app, logger);
  logger.log('worker started');
}

if (require.main === module) runMain('worker', main);
