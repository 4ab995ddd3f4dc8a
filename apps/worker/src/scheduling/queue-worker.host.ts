import { WorkerHost } from '@nestjs/bullmq';
import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Worker } from 'bullmq';

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
    /Connection is closed|Stream isn't writeable|connect ETIMEDOUT|CLUSTERDOWN|Too many Cluster redirections|Cluster isn't ready|Failed to refresh slots cache|None of startup nodes is available/.test(
      e.message,
    );
  if (connection) logger.debug(`${source} connection: ${e.message}`);
  else logger.warn(`${source}: ${e.message}`);
}

/**
 * A processor whose BullMQ worker reports its `error` events through {@link logQueueError}, and that lets its jobs in
 * flight finish before the services they use stop. Nest runs the shutdown hooks of the worker's own module first,
 * then those of the modules it imports (the domain's, with the delivery queue a job may add to; persistence), and
 * those of global modules last; @nestjs/bullmq closes the workers from a global module, so a job still running then
 * would find the delivery queue already closed.
 */
export abstract class QueueWorkerHost
  extends WorkerHost
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  private readonly errorLogger = new Logger(this.constructor.name);

  onApplicationBootstrap(): void {
    this.worker.on('error', (e: Error) => logQueueError(this.errorLogger, `${this.worker.name} worker`, e));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker.close(); // closing again later, as @nestjs/bullmq does, is harmless
  }
}

const GIVES_UP = Symbol('givesUpRetriesWhenClosing');
type RetryIfFailed = (fn: () => Promise<unknown>, opts: object) => Promise<unknown>;
interface ClosingState {
  closing?: unknown;
  closed?: unknown;
}

/**
 * BullMQ 5's Worker retries a Redis step that failed for a lost connection for ever, and without any pause once
 * the worker is closing: a step caught by a shutdown that drops the connections (Redis away or hanging, see
 * OutageShutdownService), such as advancing a job scheduler after fetching its job, becomes a promise loop that
 * starves every timer, the shutdown deadline's included, and the process never exits. BullMQ 6 gives up on a
 * step once the worker is closing; this applies the same rule to 5.x, to every call, also those already retrying
 * when the shutdown begins: a connection error while closing is reported as a plain error, which ends the retries
 * (the job is left to come back once its lock expires, like any job cut short). Idempotent.
 */
export function giveUpRetriesWhenClosing(proto: object = Worker.prototype): void {
  const p = proto as { retryIfFailed: RetryIfFailed; [GIVES_UP]?: true };
  if (p[GIVES_UP]) return;
  const retryIfFailed = p.retryIfFailed;
  p.retryIfFailed = function (this: ClosingState, fn, opts) {
    return retryIfFailed.call(
      this,
      async () => {
        try {
          return await fn();
        } catch (e) {
          if (!this.closing && !this.closed) throw e;
          // A message of its own: BullMQ reads any message naming ECONNREFUSED as a lost connection.
          throw new Error('the worker is closing; the step was not retried', { cause: e });
        }
      },
      opts,
    );
  };
  p[GIVES_UP] = true;
}
giveUpRetriesWhenClosing();
