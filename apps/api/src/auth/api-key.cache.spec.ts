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

  it('remembers a refused key for ten seconds, or for the TTL when that is shorter', async () => {
    const t = setup(60);
    expect(await t.auth('x', null)).toBeNull();
    expect(await t.auth('x', null)).toBeNull();
    expect(t.lookups()).toBe(1);
    t.clock.advance(9_999);
    expect(await t.auth('x', null)).toBeNull();
    expect(t.lookups()).toBe(1);
    t.clock.advance(1);
    expect(await t.auth('x', null)).toBeNull();
    expect(t.lookups()).toBe(2);

    const short = setup(2);
    await short.auth('x', null);
    short.clock.advance(2_000);
    await short.auth('x', null);
    expect(short.lookups()).toBe(2);
  });

  it('forgets refusals when the feed drops or the key is named by a change', async () => {
    const t = setup();
    await t.auth('x', null);
    t.handlers.forEach((h) => h(null));
    await t.auth('x', null);
    expect(t.lookups()).toBe(2);
    t.handlers.forEach((h) => h('h(x)'));
    await t.auth('x', null);
    expect(t.lookups()).toBe(3);
  });

  it('keeps working keys cached however many made-up keys are refused', async () => {
    const t = setup();
    await t.auth('a');
    for (let i = 0; i < 10_050; i++) await t.auth(`made-up-${i}`, null);
    expect(t.lookups()).toBe(10_051);
    expect(await t.auth('a')).toEqual(principal);
    expect(t.lookups()).toBe(10_051);
    // The oldest refusals made room for the newest ones.
    await t.auth('made-up-0', null);
    await t.auth('made-up-10049', null);
    expect(t.lookups()).toBe(10_052);
  });

  it('shares one lookup among requests for the same key, but not one begun before a change', async () => {
    const t = setup();
    const first = t.cache.authenticate('a');
    const second = t.cache.authenticate('a');
    await Promise.resolve();
    expect(t.lookups()).toBe(1);
    t.handlers.forEach((h) => h('h(a)')); // a revocation commits while the lookup is on the wire
    const third = t.cache.authenticate('a');
    await Promise.resolve();
    expect(t.lookups()).toBe(2);
    t.pending.shift()?.(principal); // read before the revocation
    t.pending.shift()?.(null); // read after it
    expect(await first).toEqual(principal);
    expect(await second).toEqual(principal);
    expect(await third).toBeNull();
    expect(await t.auth('a', principal)).toBeNull(); // the refusal is what was remembered
    expect(t.lookups()).toBe(2);
  });

  it('shares no lookup while the feed is down', async () => {
    const t = setup();
    t.feed.live = false;
    const first = t.cache.authenticate('a');
    const second = t.cache.authenticate('a');
    await Promise.resolve();
    expect(t.lookups()).toBe(2);
    t.pending.splice(0).forEach((resolve) => resolve(principal));
    await Promise.all([first, second]);
  });

  it('looks every request up with a TTL of 0', async () => {
    const off = setup(0);
    await off.auth('a');
    await off.auth('a');
    await off.auth('x', null);
    await off.auth('x', null);
    expect(off.lookups()).toBe(4);
    const concurrent = [off.cache.authenticate('a'), off.cache.authenticate('a')];
    await Promise.resolve();
    expect(off.lookups()).toBe(6);
    off.pending.splice(0).forEach((resolve) => resolve(principal));
    await Promise.all(concurrent);
    expect(await off.cache.authenticate(undefined)).toBeNull();
  });
});
