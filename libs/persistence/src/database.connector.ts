import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { markAwaitingConnection } from './unavailable';

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

/**
 * Connects the data source without making the process's start depend on Postgres. Boot tries once (bounded
 * by the pool's connect timeout); when Postgres is unreachable the process starts anyway: the API listens
 * (`/health/live` 200, `/health/ready` and every route needing Postgres 503 with Retry-After), the worker
 * starts without a heartbeat, and this keeps trying in the background with backoff until Postgres answers,
 * with no restart needed. Before that, queries fail with TypeORM's "Driver not Connected", which the error
 * model counts as Postgres being unavailable.
 */
@Injectable()
export class DatabaseConnector implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Database');
  private timer: NodeJS.Timeout | null = null;
  private retryMs = RETRY_MIN_MS;
  private stopped = false;
  private lastFailure: string | null = null;

  constructor(private readonly dataSource: DataSource) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!(await this.attempt())) this.schedule();
  }

  onApplicationShutdown(): void {
    markAwaitingConnection(this.dataSource, false);
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** For one-shot commands, which cannot wait: throws, with the reason, while Postgres is unreachable. */
  assertConnected(): void {
    if (!this.dataSource.isInitialized) {
      throw new Error(`Postgres is unreachable: ${this.lastFailure ?? 'not connected yet'}`);
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.attempt().then((ok) => ok || this.schedule());
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  private async attempt(): Promise<boolean> {
    if (this.dataSource.isInitialized) return true;
    try {
      await this.dataSource.initialize();
    } catch (e) {
      // A failure after the pool was made (a first query refused) leaves it open: close it before retrying.
      await (this.dataSource.driver as { disconnect?: () => Promise<void> })
        .disconnect?.()
        .catch(() => undefined);
      markAwaitingConnection(this.dataSource, true);
      const reason = (e as Error).message;
      // One line per distinct reason, not one per attempt.
      if (reason !== this.lastFailure) {
        // Said for the API and the worker alike: what waits for Postgres meanwhile is each one's own (the API's 503s).
        // A database not created yet: the CLI's `migrate` creates and migrates it (as `npm start` runs it first).
        const hint =
          (e as { code?: unknown }).code === '3D000' ? ' (run `migrate` first: it creates the database)' : '';
        this.logger.warn(`Postgres is unreachable, retrying in the background: ${reason}${hint}`);
      }
      this.lastFailure = reason;
      return false;
    }
    markAwaitingConnection(this.dataSource, false);
    if (this.stopped) {
      // Shutdown began while connecting: nothing else will close this pool.
      await this.dataSource.destroy().catch(() => undefined);
      return true;
    }
    if (this.lastFailure !== null) this.logger.log('connected to Postgres');
    this.lastFailure = null;
    return true;
  }
}
