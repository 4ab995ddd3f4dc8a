import type { AppConfig } from '@app/config';
import { ApiKeysService } from '@app/domain';
import {
  API_KEY_CHANGED_CHANNEL,
  API_KEY_CHANGE_APPLIED_CHANNEL,
  API_KEY_LISTENER_APPLICATION,
  ApiKeyChangeBarrier,
  ApiKeyChangeListener,
} from '@app/persistence';
import { Client } from 'pg';
import { siblingDatabaseName, withAdmin } from './support/admin-database';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { TEST_DATABASE_URL, assertTestDatabase } from './support/test-env';

// A database of its own for the barrier's own tests: the barrier waits for every feed connection of its
// database, and a deliberately silent one must not hold up the other suites' revocations. Named after the run's
// test database, as the other databases tests make.
const BARRIER_DB = siblingDatabaseName('barrier');

/** A connection that looks like a replica's change feed; it confirms changes only when `confirms` is set. */
async function feed(url: string, confirms: boolean): Promise<Client> {
  const client = new Client({ connectionString: url, application_name: API_KEY_LISTENER_APPLICATION });
  client.on('error', () => undefined);
  await client.connect();
  await client.query(`LISTEN ${API_KEY_CHANGED_CHANNEL}`);
  if (confirms) {
    client.on('notification', (n) => {
      void client.query('SELECT pg_notify($1, $2)', [API_KEY_CHANGE_APPLIED_CHANNEL, n.payload]);
    });
  }
  return client;
}

const barrierFor = (url: string, confirmSeconds: number) =>
  new ApiKeyChangeBarrier({
    database: { url },
    apiKeyCache: { ttlSeconds: 60, confirmSeconds },
  } as AppConfig);

/** A change as the barrier sees it: a committed notification for `keyHash` (what the api_keys trigger sends). */
const notifyChange = (url: string, keyHash: string) => async (): Promise<string> => {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SELECT pg_notify($1, $2)', [API_KEY_CHANGED_CHANNEL, keyHash]);
  } finally {
    await client.end();
  }
  return keyHash;
};

describe('API key change barrier', () => {
  describe('on its own database', () => {
    let url: string;
    const clients: Client[] = [];
    beforeAll(async () => {
      const u = new URL(TEST_DATABASE_URL);
      u.pathname = `/${BARRIER_DB}`;
      url = u.toString();
      assertTestDatabase(url);
      await withAdmin(async (admin) => {
        await admin.query(`DROP DATABASE IF EXISTS "${BARRIER_DB}" WITH (FORCE)`);
        await admin.query(`CREATE DATABASE "${BARRIER_DB}"`);
      });
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
    });
    afterAll(() => withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS "${BARRIER_DB}" WITH (FORCE)`)));

    const pidOf = async (c: Client): Promise<number> =>
      (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;

    it('returns once every feed connection has confirmed the change', async () => {
      clients.push(await feed(url, true), await feed(url, true));
      const result = await barrierFor(url, 30).around(notifyChange(url, 'a'.repeat(64)));
      expect(result).toEqual({ confirmed: 2, unconfirmed: [] });
    });

    it('does not take a confirmation of another key for this one', async () => {
      const silent = await feed(url, false);
      clients.push(silent);
      const pid = await pidOf(silent);
      const result = await barrierFor(url, 1).around(async () => {
        await silent.query('SELECT pg_notify($1, $2)', [API_KEY_CHANGE_APPLIED_CHANNEL, 'b'.repeat(64)]);
        return notifyChange(url, 'c'.repeat(64))();
      });
      expect(result).toEqual({ confirmed: 0, unconfirmed: [pid] });
    });

    it('does not take a reconnecting feed\'s "*" from before the commit; takes one from after it', async () => {
      const early = await feed(url, false);
      clients.push(early);
      const result = await barrierFor(url, 1).around(async () => {
        // Forgot everything, but before this change committed: it could have cached the key since.
        await early.query('SELECT pg_notify($1, $2)', [API_KEY_CHANGE_APPLIED_CHANNEL, '*']);
        return notifyChange(url, 'f'.repeat(64))();
      });
      expect(result).toEqual({ confirmed: 0, unconfirmed: [await pidOf(early)] });

      const late = await feed(url, false);
      clients.push(late);
      late.on('notification', (n) => {
        if (n.channel === API_KEY_CHANGED_CHANNEL)
          void late.query('SELECT pg_notify($1, $2)', [API_KEY_CHANGE_APPLIED_CHANNEL, '*']);
      });
      await early.end();
      const after = await barrierFor(url, 30).around(notifyChange(url, '0'.repeat(64)));
      expect(after).toEqual({ confirmed: 1, unconfirmed: [] });
    });

    it('still makes the change when it cannot run itself, and says so', async () => {
      let made = false;
      const result = await barrierFor(`postgres://postgres@127.0.0.1:1/${BARRIER_DB}`, 30).around(
        async () => {
          made = true;
          return '1'.repeat(64);
        },
      );
      expect(made).toBe(true);
      expect(result).toEqual({
        confirmed: 0,
        unconfirmed: [],
        unchecked: expect.stringContaining('ECONNREFUSED'),
      });
    });

    // `api-keys revoke` printed "replicas_checked": true, as if no replica had been running, while none was asked.
    it('with API_KEY_CONFIRM_SECONDS=0 makes the change without waiting, and says nothing was checked', async () => {
      clients.push(await feed(url, false));
      let made = false;
      const result = await barrierFor(url, 0).around(async () => {
        made = true;
        return '2'.repeat(64);
      });
      expect(made).toBe(true);
      expect(result).toEqual({ confirmed: 0, unconfirmed: [], unchecked: 'API_KEY_CONFIRM_SECONDS is 0' });
    });

    it('reports a feed connection that neither confirms nor goes away, after the bounded wait', async () => {
      const silent = await feed(url, false);
      clients.push(silent, await feed(url, true));
      const result = await barrierFor(url, 1).around(notifyChange(url, 'd'.repeat(64)));
      expect(result).toEqual({ confirmed: 1, unconfirmed: [await pidOf(silent)] });
    });

    it('stops waiting for a feed connection that goes away (its replica no longer serves from a cache)', async () => {
      const silent = await feed(url, false);
      clients.push(silent);
      // It goes away once it has seen the change, without confirming it: while the barrier waits for it.
      silent.on('notification', () => void silent.end());
      const result = await barrierFor(url, 50).around(notifyChange(url, 'e'.repeat(64)));
      expect(result).toEqual({ confirmed: 1, unconfirmed: [] });
    });

    it('passes on what the change throws, and waits for nothing', async () => {
      clients.push(await feed(url, false));
      // A barrier that waited for the silent feed connection would wait an hour, far past the test's timeout.
      await expect(
        barrierFor(url, 3600).around(async () => {
          throw new Error('no such key');
        }),
      ).rejects.toThrow('no such key');
    });
  });

  describe('between API replicas', () => {
    let a: RunningApi;
    let b: RunningApi;
    beforeAll(async () => {
      // Other suites' APIs share this database and must confirm too: give a busy CI machine room.
      const env = { API_KEY_CONFIRM_SECONDS: '30' };
      [a, b] = await Promise.all([startApi({ env }), startApi({ env })]);
      await eventually(
        async () => a.app.get(ApiKeyChangeListener).live && b.app.get(ApiKeyChangeListener).live,
      );
    });
    afterAll(() => Promise.all([a.close(), b.close()]));

    it('a key revoked on one replica is refused by the other as soon as the revocation returns', async () => {
      const k = await a.newKey();
      for (let i = 0; i < 2; i++) {
        expect((await a.http.get('/v1/webhooks', { key: k.key })).status).toBe(200);
        expect((await b.http.get('/v1/webhooks', { key: k.key })).status).toBe(200);
      }
      const result = await a.app.get(ApiKeysService).revoke(k.apiKeyId, { type: 'admin', id: 'test' });
      expect(result.unconfirmed).toEqual([]);
      expect(result.confirmed).toBeGreaterThanOrEqual(2);
      expect((await b.http.get('/v1/webhooks', { key: k.key })).status).toBe(401);
      expect((await a.http.get('/v1/webhooks', { key: k.key })).status).toBe(401);
    });
  });
});
