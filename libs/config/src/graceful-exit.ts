import type { Logger } from '@nestjs/common';

// Longer than a request or a job step can take (the slowest is bounded by the 3 s pool timeout plus a
// transaction), shorter than an orchestrator's kill grace period (30 s by default in Kubernetes).
const SHUTDOWN_DEADLINE_MS = 25_000;

/**
 * On SIGTERM or SIGINT, closes the Nest application (each process's modules say what closing means for
 * them) and exits 0; a close that hangs past the deadline exits 1 instead of waiting for SIGKILL.
 */
export function exitOnSignals(app: { close(): Promise<void> }, logger: Logger): void {
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
