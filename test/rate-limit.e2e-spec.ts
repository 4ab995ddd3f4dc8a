import Redis from 'ioredis';
import { Logger } from '@nestjs/common';
import type { AppConfig } from '@app/config';
import { ManualClock } from '@app/domain';
import { SHARED_CLIENT_OPTIONS, createRedis } from '@app/queue';
import {
  RateLimitExceeded,
  RateLimiterService,
  type SyncTimer,
} from '../apps/api/src/rate-limit/rate-limiter.service';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_REDIS_URL } from './support/test-env';

/** The limiter's sync timer, fired by the test: each sync runs when the test says, never 100 ms after a count. */
class ManualSyncTimer {
  private due: (() => Promise<void>) | undefined;
  readonly timer: SyncTimer = (sync) => {
    this.due = sync;
    return () => {
      if (this.due === sync) this.due = undefined;
    };
  };

  /** Runs the sync that is due; resolves once Redis has answered it, or it has failed. */
  fire(): Promise<void> {
    const sync = this.due;
    this.due = undefined;
    if (!sync) throw new Error('no sync is due');
    return sync();
  }
}

describe('rate limiting per API key', () => {
  // 20 s into a minute: the window resets 40 s later.
  const clock = new ManualClock(Date.UTC(2031, 0, 1, 12, 0, 20) + Math.floor(Math.random() * 1e6) * 60_000);
  let api: RunningApi;

  beforeAll(async () => {
    api = await startApi({ env: { RATE_LIMIT_PER_MINUTE: '3' }, clock });
  });
  afterAll(() => api.close());

  it('answers 429 rate_limited with Retry-After and RateLimit headers beyond the budget', async () => {
    const { key } = await api.newKey();
    for (const remaining of ['2', '1', '0']) {
      const res = await api.http.get('/v1/webhooks', { key });
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('3');
      expect(res.headers.get('ratelimit-remaining')).toBe(remaining);
      expect(res.headers.get('ratelimit-reset')).toBe('40');
      // The structured form of the later drafts says the same.
      expect(res.headers.get('ratelimit-policy')).toBe('"per-minute";q=3;w=60');
      expect(res.headers.get('ratelimit')).toBe(`"per-minute";r=${remaining};t=40`);
    }
    const limited = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/x', subscribed_events: ['task.completed'] },
    });
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ code: 'rate_limited', request_id: expect.any(String) });
    expect(limited.headers.get('retry-after')).toBe('40');
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    expect(limited.headers.get('ratelimit-limit')).toBe('3');
    expect(limited.headers.get('ratelimit')).toBe('"per-minute";r=0;t=40');
    // Nothing was created by the refused request.
    clock.advance(60_000);
    expect((await api.http.get('/v1/webhooks', { key })).body.webhooks).toEqual([]);
  });

  it('shares the count through Redis with the other replicas', async () => {
    const { key, apiKeyId } = await api.newKey();
    expect((await api.http.get('/v1/webhooks', { key })).status).toBe(200);
    const window = Math.floor(clock.now().getTime() / 60_000);
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const counter = `ratelimit:${apiKeyId}:${window}`;
      await eventually(async () => (await redis.get(counter)) === '1', 5000, 'the first sync');
      // Another replica spent the rest of the budget: once synced, this one refuses too.
      await redis.incrby(counter, 2);
      await api.http.get('/v1/webhooks', { key }).then((r) => expect(r.status).toBe(200));
      await eventually(
        async () => (await api.http.get('/v1/webhooks', { key })).status === 429,
        5000,
        'this replica to refuse',
      );
    } finally {
      redis.disconnect();
    }
  });

  it('counts each key separately, and gives a new budget in the next minute', async () => {
    const a = await api.newKey();
    const b = await api.newKey();
    for (let i = 0; i < 3; i++) expect((await api.http.get('/v1/webhooks', { key: a.key })).status).toBe(200);
    expect((await api.http.get('/v1/webhooks', { key: a.key })).status).toBe(429);
    expect((await api.http.get('/v1/webhooks', { key: b.key })).status).toBe(200);
    clock.advance(60_000);
    expect((await api.http.get('/v1/webhooks', { key: a.key })).status).toBe(200);
  });

  it('does not count unauthenticated requests against anyone', async () => {
    const { key } = await api.newKey();
    // More than the budget: without a key, with an unknown one, with one a character off a real one.
    for (const wrong of [undefined, 'nope', `${key}x`, 'nope', `${key}x`]) {
      const res = await api.http.get('/v1/webhooks', wrong === undefined ? {} : { key: wrong });
      expect({ status: res.status, limit: res.headers.get('ratelimit-limit') }).toEqual({
        status: 401,
        limit: null,
      });
    }
    // The real key's budget is whole.
    const res = await api.http.get('/v1/webhooks', { key });
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit-remaining')).toBe('2');
  });
});

describe('rate limiting while Redis is unreachable', () => {
  let api: RunningApi;
  let proxy: TcpProxy;

  beforeAll(async () => {
    proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    api = await startApi({ env: { RATE_LIMIT_PER_MINUTE: '3', REDIS_URL: proxy.rewrite(TEST_REDIS_URL) } });
  });
  afterAll(async () => {
    await api.close();
    await proxy.stop();
  });

  it('keeps the routes that only need Postgres working, counting on this replica alone', async () => {
    const { key } = await api.newKey();
    proxy.cut();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await api.http.post('/v1/webhooks', {
        key,
        body: { url: `https://hooks.example.com/${i}`, subscribed_events: ['task.completed'] },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([201, 201, 201, 429]);
    proxy.restore();
  });
});

describe('rate limiting while a sync with Redis is in flight', () => {
  it('still counts the requests on their way to the shared counter', async () => {
    const clock = new ManualClock(Date.UTC(2032, 0, 1, 12, 0, 20) + Math.floor(Math.random() * 1e6) * 60_000);
    const redis = new Redis(TEST_REDIS_URL);
    const syncs = new ManualSyncTimer();
    const limiter = new RateLimiterService(
      redis,
      { rateLimit: { perMinute: 3 } } as AppConfig,
      clock,
      syncs.timer,
    );
    const keyId = `key_inflight_${Date.now()}`;
    try {
      await redis.ping();
      expect(limiter.consume(keyId)?.remaining).toBe(2);
      expect(limiter.consume(keyId)?.remaining).toBe(1);
      // The sync of the first two requests is sent; its answer cannot be read before this test next yields.
      const inFlight = syncs.fire();
      expect(limiter.consume(keyId)?.remaining).toBe(0);
      expect(() => limiter.consume(keyId)).toThrow(RateLimitExceeded);
      // Answered: the two are in the shared count now, and still not counted twice.
      await inFlight;
      expect(() => limiter.consume(keyId)).toThrow(RateLimitExceeded);
      await syncs.fire();
      expect(await redis.get(`ratelimit:${keyId}:${Math.floor(clock.now().getTime() / 60_000)}`)).toBe('3');
    } finally {
      limiter.onApplicationShutdown();
      redis.disconnect();
    }
  });
  it('counts a sync that got no answer in time once, though Redis carries it out later', async () => {
    const clock = new ManualClock(Date.UTC(2033, 0, 1, 12, 0, 20) + Math.floor(Math.random() * 1e6) * 60_000);
    // The shared client's settings, with a shorter command timeout.
    const redis = new Redis(TEST_REDIS_URL, {
      commandTimeout: 200,
      enableOfflineQueue: false,
      lazyConnect: true,
    });
    redis.on('error', () => undefined);
    const admin = new Redis(TEST_REDIS_URL);
    const syncs = new ManualSyncTimer();
    const limiter = new RateLimiterService(
      redis,
      { rateLimit: { perMinute: 10 } } as AppConfig,
      clock,
      syncs.timer,
    );
    const keyId = `key_unanswered_${Date.now()}`;
    const counter = `ratelimit:${keyId}:${Math.floor(clock.now().getTime() / 60_000)}`;
    const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      await redis.connect();
      // Redis holds every command for a second: the sync of these four requests times out, and Redis carries it
      // out once it answers again.
      await admin.client('PAUSE', 1000, 'ALL');
      for (let i = 0; i < 4; i++) limiter.consume(keyId);
      await syncs.fire();
      expect(warned).toHaveBeenCalledWith(expect.stringContaining('Command timed out'));
      // Read once the pause is over (the read waits for it too).
      await eventually(async () => (await admin.get(counter)) === '4', 5000, 'the add carried out late');
      // Still counted here meanwhile, and counted once: 6 more requests fit in the budget of 10, no more.
      for (let i = 0; i < 6; i++) limiter.consume(keyId);
      expect(() => limiter.consume(keyId)).toThrow(RateLimitExceeded);
      // The next sync adds those six alone: the four that timed out are not sent again.
      await syncs.fire();
      expect(await admin.get(counter)).toBe('10');
    } finally {
      warned.mockRestore();
      limiter.onApplicationShutdown();
      await admin.client('UNPAUSE');
      redis.disconnect();
      admin.disconnect();
    }
  });
});

describe('rate limiting when the answer to a sync is lost with its connection', () => {
  it('counts that sync once: it is not sent again on the new connection', async () => {
    const clock = new ManualClock(Date.UTC(2034, 0, 1, 12, 0, 20) + Math.floor(Math.random() * 1e6) * 60_000);
    const proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
    // The shared client as the API makes it, with a shorter command timeout.
    const redis = createRedis(
      { url: proxy.rewrite(TEST_REDIS_URL), cluster: false },
      { ...SHARED_CLIENT_OPTIONS, commandTimeout: 300, lazyConnect: true },
    );
    redis.on('error', () => undefined);
    const admin = new Redis(TEST_REDIS_URL);
    const syncs = new ManualSyncTimer();
    const limiter = new RateLimiterService(
      redis,
      { rateLimit: { perMinute: 10 } } as AppConfig,
      clock,
      syncs.timer,
    );
    const keyId = `key_lost_answer_${Date.now()}`;
    const counter = `ratelimit:${keyId}:${Math.floor(clock.now().getTime() / 60_000)}`;
    try {
      await redis.connect();
      limiter.consume(keyId);
      // Answered: the next answer the proxy drops is the next sync's.
      await syncs.fire();
      expect(await admin.get(counter)).toBe('1');
      // Redis carries out the next sync (three requests), and its answer is lost with the connection.
      proxy.loseNextAnswer();
      const reconnected = new Promise((resolve) => redis.once('ready', resolve));
      for (let i = 0; i < 3; i++) limiter.consume(keyId);
      const lost = syncs.fire();
      await reconnected;
      // Answered after whatever the client sends again on its new connection.
      await redis.ping();
      expect(await admin.get(counter)).toBe('4');
      // The sync has failed (at its command timeout): this replica still counts the three, once, so 6 more
      // requests fit in the budget of 10, no more.
      await lost;
      for (let i = 0; i < 6; i++) limiter.consume(keyId);
      expect(() => limiter.consume(keyId)).toThrow(RateLimitExceeded);
      // And the next sync adds those six alone.
      await syncs.fire();
      expect(await admin.get(counter)).toBe('10');
    } finally {
      limiter.onApplicationShutdown();
      redis.disconnect();
      admin.disconnect();
      await proxy.stop();
    }
  });
});

describe('rate limiting on a replica that has not heard the shared count lately', () => {
  it('reads the shared count before deciding, so a budget spent on another replica is not spent again', async () => {
    const clock = new ManualClock(Date.UTC(2035, 0, 1, 12, 0, 20) + Math.floor(Math.random() * 1e6) * 60_000);
    const redis = new Redis(TEST_REDIS_URL);
    const config = { rateLimit: { perMinute: 3 } } as AppConfig;
    const [syncsA, syncsB] = [new ManualSyncTimer(), new ManualSyncTimer()];
    const a = new RateLimiterService(redis, config, clock, syncsA.timer);
    const b = new RateLimiterService(redis, config, clock, syncsB.timer);
    const keyId = `key_idle_replica_${Date.now()}`;
    try {
      await redis.ping();
      // Replica B serves the key's first request of the minute; then it is idle.
      await b.refresh(keyId);
      expect(b.consume(keyId)?.remaining).toBe(2);
      await syncsB.fire();
      // Replica A spends the rest of the budget, and syncs it, long after B last heard from Redis.
      clock.advance(1000);
      await a.refresh(keyId);
      expect(a.consume(keyId)?.remaining).toBe(1);
      expect(a.consume(keyId)?.remaining).toBe(0);
      await syncsA.fire();
      expect(() => a.consume(keyId)).toThrow(RateLimitExceeded);
      // B's next request is decided on the shared count, not on the one it learnt a second ago.
      await b.refresh(keyId);
      expect(() => b.consume(keyId)).toThrow(RateLimitExceeded);
      // Nor does a replica that never served the key admit it.
      const c = new RateLimiterService(redis, config, clock, new ManualSyncTimer().timer);
      await c.refresh(keyId);
      expect(() => c.consume(keyId)).toThrow(RateLimitExceeded);
      c.onApplicationShutdown();
    } finally {
      a.onApplicationShutdown();
      b.onApplicationShutdown();
      redis.disconnect();
    }
  });
});
