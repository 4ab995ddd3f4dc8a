import { Inject, Injectable } from '@nestjs/common';
import { Client, type Notification } from 'pg';
import { APP_CONFIG, type AppConfig } from '@app/config';

/** The channel on which each API replica confirms that it applied a key change (payload: the key hash, or `*`). */
export const API_KEY_CHANGE_APPLIED_CHANNEL = 'api_key_change_applied';
/** The `application_name` of every replica's change-feed connection: how a barrier finds who must confirm. */
export const API_KEY_LISTENER_APPLICATION = 'webhook-secrets-listener';

const CONNECT_TIMEOUT_MS = 3_000;
// How often the barrier checks whether a replica it waits for has gone away (a gone replica serves nothing).
const RECHECK_EVERY_MS = 200;

/** What a barrier saw once the change had committed. */
export interface KeyChangeConfirmation {
  /** Replicas (feed connections) that confirmed they dropped the key, or that went away. */
  confirmed: number;
  /** Postgres backend pids of feed connections that did not confirm within the wait. */
  unconfirmed: number[];
}

/**
 * Makes an API key change take effect on every API replica before the caller is told it is done.
 *
 * Replicas cache key lookups and drop an entry when Postgres notifies them of the change (see
 * `ApiKeyChangeListener`); that notification is asynchronous, so a request sent right after a revocation
 * could otherwise still be served from a cache. The barrier closes that window: before the change it notes
 * every replica's feed connection (by `application_name` in `pg_stat_activity`), and after the commit it waits
 * until each of them has confirmed on {@link API_KEY_CHANGE_APPLIED_CHANNEL} (sent after the cache entry is
 * gone) or has disconnected (a replica without its feed serves nothing from its cache). The wait is bounded
 * (`API_KEY_CONFIRM_SECONDS`): a replica that neither confirms nor disconnects is reported, never waited for
 * forever, and its cache still expires after `API_KEY_CACHE_SECONDS`.
 */
@Injectable()
export class ApiKeyChangeBarrier {
  private readonly timeoutMs: number;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.timeoutMs = config.apiKeyCache.confirmSeconds * 1000;
  }

  /**
   * Runs `change`, which commits a change to one API key and returns that key's hash, then waits for every
   * replica that was listening to apply it. Throws only what `change` throws (or a failure to reach Postgres
   * before it ran): once the change has committed, a failure while waiting leaves those replicas unconfirmed.
   */
  async around(change: () => Promise<string>): Promise<KeyChangeConfirmation> {
    if (this.timeoutMs === 0) {
      await change();
      return { confirmed: 0, unconfirmed: [] };
    }
    const client = new Client({
      connectionString: this.config.database.url,
      application_name: 'webhook-secrets-key-change',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    client.on('error', () => undefined);
    const applied: Array<{ pid: number; payload: string }> = [];
    let wake: (() => void) | null = null;
    client.on('notification', (n: Notification) => {
      if (n.channel !== API_KEY_CHANGE_APPLIED_CHANNEL) return;
      applied.push({ pid: n.processId, payload: n.payload ?? '' });
      wake?.();
    });
    try {
      await client.connect();
      // Listen first: a confirmation can only be sent after the change, which comes after this.
      await client.query(`LISTEN ${API_KEY_CHANGE_APPLIED_CHANNEL}`);
      const pending = new Set(await listenerPids(client));
      const keyHash = await change();
      return await this.waitFor(client, pending, keyHash, applied, (w) => (wake = w));
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async waitFor(
    client: Client,
    pending: Set<number>,
    keyHash: string,
    applied: Array<{ pid: number; payload: string }>,
    onWake: (wake: (() => void) | null) => void,
  ): Promise<KeyChangeConfirmation> {
    const total = pending.size;
    const deadline = Date.now() + this.timeoutMs;
    let seen = 0;
    try {
      for (;;) {
        // `*` is what a feed sends when it (re)connects after forgetting everything: that drops this key too.
        for (; seen < applied.length; seen++) {
          const a = applied[seen];
          if (a.payload === keyHash || a.payload === '*') pending.delete(a.pid);
        }
        if (pending.size === 0) break;
        const left = deadline - Date.now();
        if (left <= 0) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, RECHECK_EVERY_MS));
          onWake(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        onWake(null);
        if (seen === applied.length) {
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

async function listenerPids(client: Client): Promise<number[]> {
  const res = await client.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
    [API_KEY_LISTENER_APPLICATION],
  );
  return res.rows.map((r) => r.pid);
}
