import type { AppConfig } from '@app/config';
import { ManualClock, type ApiKeyChangeObserver, type ApiKeysService } from '@app/domain';
import type { ApiKeyChangeHandler, ApiKeyChangeListener, ApiKeyPrincipal } from '@app/persistence';
import { ApiKeyCache } from './api-key.cache';

const principal: ApiKeyPrincipal = { apiKeyId: 'key_1', projectId: 'p1' };

/** A cache over a key store whose lookups the test resolves by hand. */
function setup(ttlSeconds = 60) {
  const pending: ((p: ApiKeyPrincipal | null) => void)[] = [];
  let lookups = 0;
  const local: ApiKeyChangeObserver[] = [];
  const apiKeys = {
    hashOf: (k: string | undefined) => (k ? `h(${k})` : null),
    principalOf: () => {
      lookups++;
      return new Promise<ApiKeyPrincipal | null>((resolve) => pending.push(resolve));
    },
    onChange: (o: ApiKeyChangeObserver) => local.push(o),
  } as unknown as ApiKeysService;
  const handlers: ApiKeyChangeHandler[] = [];
  const feed = { live: true, onChange: (h: ApiKeyChangeHandler) => handlers.push(h) };
  const clock = new ManualClock(0);
  const cache = new ApiKeyCache(apiKeys, feed as unknown as ApiKeyChangeListener, clock, {
    apiKeyCache: { ttlSeconds },
  } as AppConfig);
  /** Authenticates, answering the lookup (if one is made) with `answer`. */
  const auth = async (key: string, answer: ApiKeyPrincipal | null = principal) => {
    const p = cache.authenticate(key);
    await Promise.resolve();
    pending.shift()?.(answer);
    return p;
  };
  return { cache, feed, clock, handlers, local, pending, auth, lookups: () => lookups };
}

describe('ApiKeyCache', () => {
  it('looks a key up once, then serves it until the TTL ends', async () => {
    const t = setup(60);
    expect(await t.auth('a')).toEqual(principal);
    expect(await t.auth('a')).toEqual(principal);
    expect(t.lookups()).toBe(1);
    t.clock.advance(60_000);
    expect(await t.auth('a')).toEqual(principal);
    expect(t.lookups()).toBe(2);
  });

  it('forgets a key named by a change notification or by a revocation in this process', async () => {
    const t = setup();
    await t.auth('a');
    t.handlers.forEach((h) => h('h(a)'));
    await t.auth('a');
    expect(t.lookups()).toBe(2);
    t.local.forEach((o) => o('h(a)'));
    await t.auth('a');
    expect(t.lookups()).toBe(3);
  });

  it('does not store an answer read before a change that arrived while it was in flight', async () => {
    const t = setup();
    const inFlight = t.cache.authenticate('a');
    await Promise.resolve();
    t.handlers.forEach((h) => h('h(a)')); // the revocation commits while the lookup is on the wire
    t.pending.shift()?.(principal); // the lookup read the row before the revocation
    expect(await inFlight).toEqual(principal);
    await t.auth('a', null);
    expect(t.lookups()).toBe(2);
  });

  it('serves nothing while the feed is down, and forgets everything when it drops', async () => {
    const t = setup();
    await t.auth('a');
    t.feed.live = false;
    t.handlers.forEach((h) => h(null));
    await t.auth('a');
    await t.auth('a');
    expect(t.lookups()).toBe(3);
  });

  it('never caches unknown keys, and looks everything up with a TTL of 0', async () => {
    const t = setup();
    expect(await t.auth('x', null)).toBeNull();
    expect(await t.auth('x', null)).toBeNull();
    expect(t.lookups()).toBe(2);
    const off = setup(0);
    await off.auth('a');
    await off.auth('a');
    expect(off.lookups()).toBe(2);
    expect(await off.cache.authenticate(undefined)).toBeNull();
  });
});
