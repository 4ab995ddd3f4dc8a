import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis, RedisOptions } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { OutageLog } from './outage-log';
import { createRedis, disconnectClusterClients } from './redis-connection';

/** Longest wait for one command of the shared client; none of its commands blocks on purpose. */
export const SHARED_COMMAND_TIMEOUT_MS = 5000;

/** Injection token of the shared ioredis client (streams, rate limits, health). */
export const REDIS = Symbol('REDIS');

/** The options of the shared client, on top of those of the URL (see {@link RedisModule}). */
export const SHARED_CLIENT_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  // A Redis that hangs instead of refusing (paused, swapping, a network partition) fails commands too,
  // rather than holding health checks, scrapes and the relay for as long as it hangs.
  commandTimeout: SHARED_COMMAND_TIMEOUT_MS,
  // A command whose answer was lost with its connection may have been carried out: it is never sent again on the
  // next connection (ioredis would, by default), where it would be carried out twice (a rate-limit add counted
  // twice, refusing callers under their budget). It fails after the command timeout, and its caller decides.
  autoResendUnfulfilledCommands: false,
  connectionName: 'webhook-secrets',
};

/**
 * One ioredis client per process. The offline queue is off: while Redis is away, commands fail at once
 * (the caller answers 503 or retries later) instead of piling up in memory; the client reconnects by itself.
 */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => createRedis(config.redis, SHARED_CLIENT_OPTIONS),
    },
  ],
  exports: [REDIS],
})
export class RedisModule implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');

  constructor(@Inject(REDIS) private readonly redis: Redis) {
    // Errors surface on the commands that fail; the 'error' event would otherwise crash the process. Each spell
    // without Redis is said once, with its reason (a wrong host, TLS against a server without it, cluster mode
    // against a single server), as Postgres's is: otherwise the API would only answer 503, saying nothing why. A
    // new reason later in the spell is said at most once a minute (see OutageLog).
    const outage = new OutageLog();
    this.redis.on('error', (e: Error) => {
      const reason = outage.failed(e);
      if (reason !== null) this.logger.warn(`Redis is unreachable, retrying in the background: ${reason}`);
    });
    this.redis.on('ready', () => {
      if (outage.recovered()) this.logger.log('connected to Redis');
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.redis.disconnect();
    disconnectClusterClients();
  }
}
