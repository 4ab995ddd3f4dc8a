import { ManualClock } from '@app/domain';
import { ApiKeyChangeListener } from '@app/persistence';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_DATABASE_URL } from './support/test-env';

// API key lookups are cached per replica; these tests change keys behind the API's back (plain SQL, as
// another replica or an operator would) and check that the cache never lets a revoked key through.
describe('API key lookup cache', () => {
  describe('on a healthy database', () => {
    let api: RunningApi;
    beforeAll(async () => {
      // A clock that never moves: no cached entry can reach its time to live, so a key refused below was
      // forgotten because of the change notification, however long that took to arrive on a loaded machine.
      api = await startApi({ clock: new ManualClock() });
      await eventually(async () => api.app.get(ApiKeyChangeListener).live);
    });
    afterAll(() => api.close());

    const status = async (key: string): Promise<number> =>
      (await api.http.get('/v1/webhooks', { key })).status;

    it('refuses a key revoked by another process as soon as the change notification arrives', async () => {
      const k = await api.newKey();
      expect(await status(k.key)).toBe(200);
      expect(await status(k.key)).toBe(200); // served from the cache now
      await api.db.dataSource.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [k.apiKeyId]);
      await eventually(async () => (await status(k.key)) === 401);
      expect(await status(k.key)).toBe(401);
    });

    it('refuses a deleted key and keeps serving the others', async () => {
      const a = await api.newKey();
      const b = await api.newKey();
      expect(await status(a.key)).toBe(200);
      expect(await status(b.key)).toBe(200);
      await api.db.dataSource.query('DELETE FROM api_keys WHERE id = $1', [a.apiKeyId]);
      await eventually(async () => (await status(a.key)) === 401);
      expect(await status(b.key)).toBe(200);
    });

    it('never caches an unknown or revoked key: a key revoked and then restored works again', async () => {
      const k = await api.newKey();
      await api.db.dataSource.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [k.apiKeyId]);
      await eventually(async () => (await status(k.key)) === 401);
      await api.db.dataSource.query('UPDATE api_keys SET revoked_at = NULL WHERE id = $1', [k.apiKeyId]);
      expect(await status(k.key)).toBe(200);
    });
  });

  describe('while the change feed is down', () => {
    let proxy: TcpProxy;
    let api: RunningApi;
    beforeAll(async () => {
      proxy = await TcpProxy.inFrontOf(TEST_DATABASE_URL);
      api = await startApi({ env: { DATABASE_URL: proxy.rewrite(TEST_DATABASE_URL) } });
      await eventually(async () => api.app.get(ApiKeyChangeListener).live);
    });
    afterAll(async () => {
      proxy.restore();
      await api.close();
      await proxy.stop();
    });

    it('forgets what it cached, so a key revoked during the outage is refused once Postgres is back', async () => {
      const k = await api.newKey();
      expect((await api.http.get('/v1/webhooks', { key: k.key })).status).toBe(200);
      proxy.cut();
      await eventually(async () => !api.app.get(ApiKeyChangeListener).live);
      // Revoked directly on the database (not through the proxy): no notification can reach this API.
      const direct = await startApi();
      try {
        await direct.db.dataSource.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [
          k.apiKeyId,
        ]);
      } finally {
        await direct.close();
      }
      const during = await api.http.get('/v1/webhooks', { key: k.key });
      expect(during.status).toBe(503);
      proxy.restore();
      await eventually(async () => (await api.http.get('/health/ready')).status === 200, 15000);
      expect((await api.http.get('/v1/webhooks', { key: k.key })).status).toBe(401);
      await eventually(async () => api.app.get(ApiKeyChangeListener).live, 15000);
      expect((await api.http.get('/v1/webhooks', { key: k.key })).status).toBe(401);
    });
  });
});
