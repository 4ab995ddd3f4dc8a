import { WorkerHost } from '@nestjs/bullmq';
import { Logger, type OnApplicationBootstrap } from '@nestjs/common';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Logs an `error` event of a BullMQ queue or worker as one structured line. Without a listener BullMQ prints
 * each one with console.error, a multi-line stack per reconnect attempt. Losing the connection is a debug line:
 * the heartbeat and the relay already report an outage once, at warn level. Anything else is a warning.
 */
export function logQueueError(logger: Logger, source: string, e: Error): void {
  const code = (e as NodeJS.ErrnoException).code;
  const connection =
    (code !== undefined && CONNECTION_CODES.has(code)) ||
    /Connection is closed|Stream isn't writeable|connect ETIMEDOUT|CLUSTERDOWN|Too many Cluster redirections|Cluster isn't ready|Failed to refresh slots cache/.test(
      e.message,
    );
  if (connection) logger.debug(`${source} connection: ${e.message}`);
  else logger.warn(`${source}: ${e.message}`);
}

/** A processor whose BullMQ worker reports its `error` events through {@link logQueueError}. */
export abstract class QueueWorkerHost extends WorkerHost implements OnApplicationBootstrap {
  private readonly errorLogger = new Logger(this.constructor.name);

  onApplicationBootstrap(): void {
    this.worker.on('error', (e: Error) => logQueueError(this.errorLogger, `${this.worker.name} worker`, e));
  }
}
