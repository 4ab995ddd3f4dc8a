import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoLogger } from 'nestjs-pino';
import { ConfigError, loadConfig } from '@app/config';
import { WorkerModule } from './worker.module';

async function main(): Promise<void> {
  try {
    loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  const app = await NestFactory.createApplicationContext(WorkerModule, { bufferLogs: true });
  app.useLogger(app.get(PinoLogger));
  const logger = new Logger('worker');
  exitOnSignals(app, logger);
  logger.log('worker started');
}

// Longer than a request can take (the slowest is bounded by the 3 s pool timeout plus a transaction), shorter
// than an orchestrator's kill grace period (30 s by default in Kubernetes).
const SHUTDOWN_DEADLINE_MS = 25_000;

/**
 * SIGTERM or SIGINT: Nest closes the application (every BullMQ worker stops taking jobs and waits for its running ones (`worker.close()`; a job cut short by a crash is returned to the queue once its lock expires, and every job is idempotent), schedulers stop, then the pools close), then the process exits 0. A close that hangs past the
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
