import { getQueueToken } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import { QueueName, REDIS, withTimeout } from '@app/queue';
import { AuditRelayProcessor } from '../audit/audit-relay.processor';
import { DeliveryProcessor } from '../delivery/delivery.processor';
import { HousekeepingProcessor } from '../housekeeping/housekeeping.processor';
import { RotationProcessor } from '../rotation/rotation.processor';

/** How long a PING may take at shutdown before Redis counts as not answering. */
const PING_WAIT_MS = 1000;

/** The part of BullMQ's RedisConnection (a queue's or a worker's connection) used here. */
interface ForceClosable {
  close(force: boolean): Promise<void>;
  /** The ioredis client, once created. */
  _client?: DroppableClient;
}

/** An ioredis client (single or cluster), with the method that rejects its waiting commands. */
interface DroppableClient {
  status: string;
  disconnect(): void;
  flushQueue(error: Error): void;
}

/**
 * Ends a client at once, also one connected to a Redis that hangs (whose `disconnect()` alone ends it only once its
 * connection has closed): the commands it holds fail as on a closed connection, and so does any sent later, such
 * as the QUIT of a close already under way. BullMQ takes such failures as the connection's, and carries on closing.
 */
function drop(client: DroppableClient | undefined): void {
  if (client === undefined || client.status === 'end') return;
  client.disconnect();
  client.status = 'end';
  client.flushQueue(new Error('Connection is closed.'));
}

/**
 * Lets the worker stop while Redis is away. Closing a BullMQ queue or worker sends QUIT, which a reconnecting
 * client holds until Redis answers: the shutdown would wait out its deadline and exit 1. So when Redis does not
 * answer at shutdown, the workers are closed without waiting for their jobs (which could not be completed in
 * Redis anyway; a job cut short returns to its queue once its lock expires, and every job is idempotent) and the
 * queues' connections are dropped, before the usual closing runs. That is so both when Redis is away and when it
 * hangs (connected, but a PING gets no answer within a second).
 */
@Injectable()
export class OutageShutdownService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(OutageShutdownService.name);

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly modules: ModuleRef,
  ) {}

  async beforeApplicationShutdown(): Promise<void> {
    if (await this.answers()) {
      // Redis may still go away while the queues close, their QUITs and last commands then waiting for it: drop
      // the connections when it does. (This client's own QUIT ends it without a `reconnecting`.)
      this.redis.once('reconnecting', () => {
        this.logger.warn('Redis went away during shutdown: closing the queues without waiting for it');
        void this.closeWithoutRedis(true);
      });
      return;
    }
    this.logger.warn('Redis does not answer: closing the queues without waiting for it');
    await this.closeWithoutRedis(false);
  }

  /**
   * Closes the workers without waiting for their jobs (which could not be completed in Redis anyway) and drops
   * the queues' connections; with `closing`, a close already under way waits on them, and their clients are
   * ended too.
   */
  private async closeWithoutRedis(closing: boolean): Promise<void> {
    const processors = [AuditRelayProcessor, DeliveryProcessor, HousekeepingProcessor, RotationProcessor];
    const workers = processors.map((p) => this.modules.get(p, { strict: false }).worker);
    const queueConnections = Object.values(QueueName).map(
      (name) =>
        (
          this.modules.get<Queue>(getQueueToken(name), { strict: false }) as unknown as {
            connection: ForceClosable;
          }
        ).connection,
    );
    const closed = Promise.allSettled([
      ...workers.map((w) => w.close(true)),
      // Queue.close() has no force; its connection's close(true) drops the client, and the queue's own close
      // later finds that connection closed. (A plain disconnect() does not end at once a client whose Redis hangs.)
      ...queueConnections.map((c) => c.close(true)),
    ]);
    if (closing) {
      for (const w of workers) {
        const { connection, blockingConnection } = w as unknown as Record<string, ForceClosable>;
        drop(connection._client);
        drop(blockingConnection._client);
      }
      for (const c of queueConnections) drop(c._client);
    }
    await closed;
  }

  /**
   * Whether Redis answers now: connected, and a PING comes back within {@link PING_WAIT_MS}. A Redis that hangs
   * (paused, a network partition) keeps its connections open, so being connected alone says nothing.
   */
  private async answers(): Promise<boolean> {
    if (this.redis.status !== 'ready') return false;
    try {
      await withTimeout(this.redis.ping(), PING_WAIT_MS, () => new Error('PING not answered'));
      return true;
    } catch {
      return false;
    }
  }
}
