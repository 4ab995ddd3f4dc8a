import { Inject, Injectable } from '@nestjs/common';
import { Client, type Notification } from 'pg';
import { APP_CONFIG, type AppConfig } from '@app/config';

/** The channel the `api_keys` triggers notify on (see the ApiKeyChangeNotifications migration). */
export const API_KEY_CHANGED_CHANNEL = 'api_key_changed';
/** The channel on which each API replica confirms that it applied a key change (payload: the key hash, or `*`). */
export const API_KEY_CHANGE_APPLIED_CHANNEL = 'api_key_change_applied';
/** The `application_name` of every replica's change-feed connection: how a barrier finds who must confirm. */
export const API_KEY_LISTENER_APPLICATION = 'webhook-secrets-listener';

const CONNECT_TIMEOUT_MS = 3_000;
// Every statement of the barrier's own connection: a silent link must not hold a revocation up.
const QUERY_TIMEOUT_MS = 3_000;
// How often the barrier checks whether a replica it waits for has gone away (a gone replica serves nothing).
const RECHECK_EVERY_MS = 200;

/** What a barrier saw once the change had committed. */
export interface KeyChangeConfirmation {
  /** Replicas (feed connections) that confirmed they dropped the key, or whose connection went away. */
  confirmed: number;
  /** Postgres backend pids of feed connections that did not confirm within the wait. */
  unconfirmed: number[];
  /**
   * Set, with the reason, when the barrier did not run (it could not connect, or API_KEY_CONFIRM_SECONDS is 0); the
   * change was made all the same, and nothing was confirmed.
   */
  unchecked?: string;
}

/**
 * Makes an API key change take effect on every API replica before the caller is told it is done.
 *
 * Replicas cache key lookups and drop an entry when Postgres notifies them of the change (see
 * `ApiKeyChangeListener`); that notification is asynchronous, so a request sent right after a revocation
 * could otherwise still be served from a cache. The barrier closes that window: before the change it notes
 * every replica's feed connection (by `application_name` in `pg_stat_activity`) and listens on both channels;
 * after the commit it waits until each of them has confirmed on {@link API_KEY_CHANGE_APPLIED_CHANNEL} (sent
 * once the cache entry is gone) or has disconnected (a replica without its feed serves nothing from its
 * cache). Only confirmations that arrive after the change's own notification count: Postgres delivers
 * notifications in commit order, so those were sent after the commit, and a replica's `*` (it reconnected
 * and forgot everything) from before the commit cannot pass for one. The wait is bounded
 * (`API_KEY_CONFIRM_SECONDS`): a replica that neither confirms nor disconnects is reported, and its cache still
 * expires after `API_KEY_CACHE_SECONDS`. When the barrier cannot run at all (its connection refused), the
 * change is still made and the result says so: a revocation must never depend on the barrier.
 */
@Injectable()
export class ApiKeyChangeBarrier {
  private readonly timeoutMs: number;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.timeoutMs = config.apiKeyCache.confirmSeconds * 1000;
  }

  /**
   * Runs `change`, which commits a change to one API key and returns that key's hash, then waits for every
   * replica that was listening to apply it. Throws only what `change` throws.
   */
  async around(change: () => Promise<string>): Promise<KeyChangeConfirmation> {
    if (this.timeoutMs === 0) {
      await change();
      // Not awaited by configuration: no replica was asked, which the result must not pass off as none running.
      return { confirmed: 0, unconfirmed: [], unchecked: 'API_KEY_CONFIRM_SECONDS is 0' };
    }
    const client = new Client({
      connectionString: this.config.database.url,
      application_name: 'webhook-secrets-key-change',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
    });
    client.on('error', () => undefined);
    const feed = new NotificationFeed(client);
    try {
      let pending: Set<number>;
      try {
        await client.connect();
        // Listen first: the change and every confirmation of it come after this.
        await client.query(`LISTEN ${API_KEY_CHANGED_CHANNEL}; LISTEN ${API_KEY_CHANGE_APPLIED_CHANNEL}`);
        pending = new Set(await listenerPids(client));
      } catch (e) {
        await change();
        return { confirmed: 0, unconfirmed: [], unchecked: (e as Error).message };
      }
      const keyHash = await change();
      return await this.waitFor(client, feed, pending, keyHash);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async waitFor(
    client: Client,
    feed: NotificationFeed,
    pending: Set<number>,
    keyHash: string,
  ): Promise<KeyChangeConfirmation> {
    const total = pending.size;
    const deadline = Date.now() + this.timeoutMs;
    let seen = 0;
    let committed = false;
    try {
      for (;;) {
        for (; seen < feed.received.length; seen++) {
          const n = feed.received[seen];
          if (n.channel === API_KEY_CHANGED_CHANNEL && n.payload === keyHash) committed = true;
          // `*` is what a feed sends when it (re)connects after forgetting everything: that drops this key too.
          else if (committed && (n.payload === keyHash || n.payload === '*')) pending.delete(n.pid);
        }
        if (pending.size === 0) break;
        const left = deadline - Date.now();
        if (left <= 0) break;
        const woken = await feed.next(Math.min(left, RECHECK_EVERY_MS));
        if (!woken) {
          const alive = new Set(await listenerPids(client));
          for (const pid of pending) if (!alive.has(pid)) pending.delete(pid);
        }
      }
    } catch {
      // Postgres went away while waiting: the change is committed, and every feed connection is being
      // dropped too (which empties those caches); report what was not confirmed.
    }
    return { confirmed: total - pending.size, unconfirmed: [...pending].sort((a, b) => a - b) };
  }
}

/** The notifications of one connection, in the order they arrived, with a bounded wait for the next one. */
class NotificationFeed {
  readonly received: Array<{ channel: string; pid: number; payload: string }> = [];
  private wake: (() => void) | null = null;

  constructor(client: Client) {
    client.on('notification', (n: Notification) => {
      this.received.push({ channel: n.channel, pid: n.processId, payload: n.payload ?? '' });
      this.wake?.();
    });
  }

  /** Resolves true when a notification arrives, false after `ms` without one. */
  next(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve(true);
      };
    });
  }
}

async function listenerPids(client: Client): Promise<number[]> {
  const res = await client.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
    [API_KEY_LISTENER_APPLICATION],
  );
  return res.rows.map((r) => r.pid);
}
