import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { ApiKeysService, Clock } from '@app/domain';
import { ApiKeyChangeListener, type ApiKeyPrincipal } from '@app/persistence';

// Bounded: a key costs about 200 bytes here, and the oldest entries go first once the map is full. Refusals
// have their own map, so a flood of made-up keys pushes out only other refusals, never a working key.
const MAX_ENTRIES = 10_000;
const MAX_REFUSALS = 10_000;
// A refusal is remembered for at most this long (and never past API_KEY_CACHE_SECONDS).
const REFUSAL_TTL_MS = 10_000;

interface Entry {
  principal: ApiKeyPrincipal | null;
  expiresAt: number;
}

interface Lookup {
  answer: Promise<ApiKeyPrincipal | null>;
  generation: number;
}

/**
 * API key lookups, cached in process so that an authenticated request costs no Postgres round trip.
 *
 * Correct on revocation: Postgres announces every key change at commit (LISTEN/NOTIFY, see
 * {@link ApiKeyChangeListener}) and this process's own revocations are seen even before that. The cache serves
 * only while the notification feed is live; when it drops, everything is forgotten and lookups go to
 * Postgres until it is back. A lookup that was in flight while a change arrived is not cached (the change
 * generation moved), so an answer read before a revocation can never be stored after it.
 *
 * Refusals (an unknown or revoked key) are remembered too, briefly, so that a client retrying with a wrong
 * key in a loop costs no Postgres round trip either. That is safe because a refused key never becomes
 * usable: keys are minted from 32 random bytes (a new key cannot be one presented before) and a revocation
 * is final. While the cache serves, requests that arrive while the same key is being looked up share that
 * one lookup, unless a change arrived since it began.
 */
@Injectable()
export class ApiKeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly refusals = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Lookup>();
  private readonly ttlMs: number;
  private readonly refusalTtlMs: number;
  /** Moves on every change notification; a lookup stores its answer only if it has not moved meanwhile. */
  private generation = 0;

  constructor(
    private readonly apiKeys: ApiKeysService,
    private readonly feed: ApiKeyChangeListener,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.ttlMs = config.apiKeyCache.ttlSeconds * 1000;
    this.refusalTtlMs = Math.min(this.ttlMs, REFUSAL_TTL_MS);
    const forget = (keyHash: string | null): void => {
      this.generation++;
      if (keyHash === null) {
        this.entries.clear();
        this.refusals.clear();
      } else {
        this.entries.delete(keyHash);
        this.refusals.delete(keyHash);
      }
    };
    feed.onChange(forget);
    apiKeys.onChange(forget);
  }

  /** The principal of a usable key, or null for a missing, malformed, unknown or revoked one. */
  async authenticate(apiKey: string | undefined): Promise<ApiKeyPrincipal | null> {
    const keyHash = this.apiKeys.hashOf(apiKey);
    if (keyHash === null) return null;
    const serving = this.ttlMs > 0 && this.feed.live;
    if (serving) {
      const now = this.clock.now().getTime();
      const hit = this.fresh(this.entries, keyHash, now) ?? this.fresh(this.refusals, keyHash, now);
      if (hit) return hit.principal;
      // A lookup begun before the latest change may have read the key as it was; only a later one is shared.
      const shared = this.inFlight.get(keyHash);
      if (shared && shared.generation === this.generation) return shared.answer;
    }
    return this.lookUp(keyHash, serving);
  }

  private async lookUp(keyHash: string, serving: boolean): Promise<ApiKeyPrincipal | null> {
    const generation = this.generation;
    const lookup: Lookup = { answer: this.apiKeys.principalOf(keyHash), generation };
    this.inFlight.set(keyHash, lookup);
    try {
      const principal = await lookup.answer;
      if (serving && this.feed.live && generation === this.generation) {
        const [map, max, ttl] = principal
          ? [this.entries, MAX_ENTRIES, this.ttlMs]
          : [this.refusals, MAX_REFUSALS, this.refusalTtlMs];
        if (map.size >= max) map.delete(map.keys().next().value as string);
        map.set(keyHash, { principal, expiresAt: this.clock.now().getTime() + ttl });
      }
      return principal;
    } finally {
      if (this.inFlight.get(keyHash) === lookup) this.inFlight.delete(keyHash);
    }
  }

  /** The unexpired entry for `keyHash` in `map`; an expired one is dropped. */
  private fresh(map: Map<string, Entry>, keyHash: string, now: number): Entry | undefined {
    const hit = map.get(keyHash);
    if (hit && hit.expiresAt > now) return hit;
    if (hit) map.delete(keyHash);
    return undefined;
  }
}
