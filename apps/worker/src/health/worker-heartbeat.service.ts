import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type Redis from 'ioredis';
import { constants } from 'node:fs';
import { access, utimes, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/persistence';
import { REDIS, probeRedis } from '@app/queue';

const BEAT_EVERY_MS = 10_000;

/**
 * Rejects, naming the file, when the worker could not write its heartbeat file (a directory that does not exist, or
 * that it may not write to): it would run with a health check that never passes, and say only that a dependency
 * does not answer. Checked at start, without writing the file, which must not look fresh before a beat.
 */
export async function checkHeartbeatFile(file: string): Promise<void> {
  try {
    await access(dirname(file), constants.W_OK | constants.X_OK);
    await access(file, constants.W_OK).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  } catch (e) {
    throw new Error(`WORKER_HEARTBEAT_FILE ${file} cannot be written (${(e as NodeJS.ErrnoException).code})`);
  }
}

/**
 * The worker has no HTTP port, so its liveness is a file it touches every 10 s while Postgres and Redis
 * answer. The container health check fails when the file grows stale: a stuck event loop or a lost
 * dependency both show.
 */
@Injectable()
export class WorkerHeartbeatService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WorkerHeartbeatService.name);
  private timer: NodeJS.Timeout | undefined;
  private healthy = true;
  private beats = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  onApplicationBootstrap(): void {
    // Redis' offline queue is off, so a ping before its first connection fails: the first beat waits for it
    // (or for the interval, should Redis not come up), instead of reporting a dependency down at every boot.
    if (this.redis.status === 'ready') void this.beat();
    else this.redis.once('ready', () => void this.beat());
    this.timer = setInterval(() => void this.beat(), BEAT_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Touches the heartbeat file when both dependencies answer; returns whether they did. */
  async beat(): Promise<boolean> {
    try {
      await Promise.all([this.db.ping(), probeRedis(this.redis)]);
      const file = this.config.worker.heartbeatFile;
      const now = new Date();
      // The first beat of this process writes its pid; later ones only touch the file.
      if (this.beats++ === 0) await writeFile(file, `${process.pid}\n`);
      else await utimes(file, now, now).catch(() => writeFile(file, `${process.pid}\n`));
      if (!this.healthy) this.logger.log('dependencies answer again');
      this.healthy = true;
      return true;
    } catch (e) {
      if (this.healthy) this.logger.warn({ reason: (e as Error).message }, 'a dependency does not answer');
      this.healthy = false;
      return false;
    }
  }
}
