import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Client } from 'pg';
import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  API_KEY_CHANGED_CHANNEL,
  API_KEY_CHANGE_APPLIED_CHANNEL,
  API_KEY_LISTENER_APPLICATION,
} from './api-key-change.barrier';
import { END_WAIT_MS, dropUnlessEndedWithin } from '../answer-deadline';

/**
 * Told about API key changes: `keyHash` is the hash of a key that changed (revoked, deleted), or null when
 * any key may have changed unseen (the feed started, dropped or came back, or the table was truncated).
 */
export type ApiKeyChangeHandler = (keyHash: string | null) => void;

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;
// A connection that died without a FIN or RST (a partition) is found by this ping, not by waiting for TCP.
const PING_EVERY_MS = 15_000;
const PING_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 3_000;

/**
 * One dedicated Postgres connection that LISTENs for API key changes, so that API key lookups can be cached
 * in process and a revocation still takes effect on every replica within milliseconds. {@link live} is true
 * only while the LISTEN is in place: a cache must not serve anything while it is false, because changes made
 * then are not seen. It reconnects by itself (with backoff) when Postgres goes away and comes back.
 */
@Injectable()
export class ApiKeyChangeListener implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ApiKeyChangeListener.name);
  private readonly handlers: ApiKeyChangeHandler[] = [];
  private client: Client | null = null;
  private retryMs = RETRY_MIN_MS;
  private timer: NodeJS.Timeout | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private stopped = false;
  private wasLive = false;
  /** True while the LISTEN is in place on a working connection. */
  live = false;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** Registers a handler for changes. */
  onChange(handler: ApiKeyChangeHandler): void {
    this.handlers.push(handler);
  }

  onModuleInit(): void {
    // Boot does not wait for it: until the LISTEN is in place, lookups simply go to Postgres.
    void this.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    const client = this.client;
    this.client = null;
    this.live = false;
    if (!client) return;
    dropUnlessEndedWithin(client, END_WAIT_MS);
    await client.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    this.timer = null;
    if (this.stopped) return;
    const client = new Client({
      connectionString: this.config.database.url,
      application_name: API_KEY_LISTENER_APPLICATION,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: PING_TIMEOUT_MS,
      keepAlive: true,
    });
    this.client = client;
    client.on('notification', (msg) => {
      if (client !== this.client || msg.channel !== API_KEY_CHANGED_CHANNEL) return;
      this.emit(msg.payload || null);
      void this.confirm(client, msg.payload || '*');
    });
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client, null));
    try {
      await client.connect();
      await client.query(`LISTEN ${API_KEY_CHANGED_CHANNEL}`);
    } catch (e) {
      this.lost(client, e as Error);
      return;
    }
    if (client !== this.client || this.stopped) return;
    // Changes made while no LISTEN was in place were missed: forget everything, say so, then serve again.
    // Serving starts only once the `*` is committed: a change that commits before it is seen by the lookups
    // (none of them cached while not live), one that commits after it arrives here as a notification, so a
    // change barrier may count the `*` in either case (see ApiKeyChangeBarrier).
    this.emit(null);
    if (!(await this.confirm(client, '*')) || client !== this.client || this.stopped) return;
    this.live = true;
    this.retryMs = RETRY_MIN_MS;
    if (!this.wasLive) this.logger.log('listening for API key changes');
    this.wasLive = true;
    this.pinger = setInterval(() => {
      client.query('SELECT 1').catch((e: Error) => this.lost(client, e));
    }, PING_EVERY_MS);
    this.pinger.unref();
  }

  /** The connection failed or ended: stop serving from caches, and reconnect after a backoff. */
  private lost(client: Client, error: Error | null): void {
    if (client !== this.client) return;
    this.client = null;
    this.live = false;
    this.clearTimers();
    this.emit(null);
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    if (this.stopped) return;
    if (this.wasLive) {
      this.logger.warn(
        `API key change feed lost, lookups go to Postgres until it is back: ${error?.message ?? 'connection ended'}`,
      );
      this.wasLive = false;
    }
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  /**
   * Tells whoever made a change (see ApiKeyChangeBarrier) that this process has applied it: sent on this
   * connection, so the sender is identified by this connection's backend pid. False (and the connection
   * given up) when it could not be sent.
   */
  private async confirm(client: Client, payload: string): Promise<boolean> {
    try {
      await client.query('SELECT pg_notify($1, $2)', [API_KEY_CHANGE_APPLIED_CHANNEL, payload]);
      return true;
    } catch (e) {
      this.lost(client, e as Error);
      return false;
    }
  }

  private emit(keyHash: string | null): void {
    for (const h of this.handlers) h(keyHash);
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.pinger) clearInterval(this.pinger);
    this.timer = null;
    this.pinger = null;
  }
}
