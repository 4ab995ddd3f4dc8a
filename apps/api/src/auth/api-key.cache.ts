import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { ApiKeysService, Clock } from '@app/domain';
import { ApiKeyChangeListener, type ApiKeyPrincipal } from '@app/persistence';

// Bounded: a key costs about 200 bytes here, and the oldest entries go first once the map is full.
const MAX_ENTRIES = 10_000;

interface Entry {
  principal: ApiKeyPrincipal;
  expiresAt: number;
}

/**
 * API key lookups, cached in process so that an authenticated request costs no Postgres round trip.
 *
 * Correct on revocation: Postgres announces every key change at commit (LISTEN/NOTIFY, see
 * {@link ApiKeyChangeListener}) and this process's own revocations are seen even before that. The cache serves
 * only while the notification feed is live; when it drops, everything is forgotten and lookups go to
 * Postgres until it is back. A lookup that was in flight while a change arrived is not cached (the change
 * generation moved), so an answer read before a revocation can never be stored after it. Only usable keys
 * are cached: an unknown or revoked key is asked about every time (and is not a way to fill memory).
 */
@Injectable()
export class ApiKeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  /** Moves on every change notification; a lookup stores its answer only if it has not moved meanwhile. */
  private generation = 0;

  constructor(
    private readonly apiKeys: ApiKeysService,
    private readonly feed: ApiKeyChangeListener,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.ttlMs = config.apiKeyCache.ttlSeconds * 1000;
    const forget = (keyHash: string | null): void => {
      this.generation++;
      if (keyHash === null) this.entries.clear();
      else this.entries.delete(keyHash);
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
      const hit = this.entries.get(keyHash);
      if (hit && hit.expiresAt > this.clock.now().getTime()) return hit.principal;
      if (hit) this.entries.delete(keyHash);
    }
    const generation = this.generation;
    const principal = await this.apiKeys.principalOf(keyHash);
    if (principal && serving && this.feed.live && generation === this.generation) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
      this.entries.set(keyHash, { principal, expiresAt: this.clock.now().getTime() + this.ttlMs });
    }
    return principal;
  }
}
