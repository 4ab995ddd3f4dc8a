import { Inject, Injectable, Optional } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { REDIS } from '@app/queue';

/**
 * The pub/sub channel on which committed changes wake the relay. Derived from the stream name: Redis pub/sub
 * ignores the logical database, so two deployments sharing a server but not a stream must not wake each other.
 */
export function auditRelayChannel(stream: string): string {
  return `${stream}:relay-wake`;
}

/**
 * Wakes the audit relay right after a commit, so the lag stays low without tight polling. Strictly
 * best-effort: it never waits for Redis and never throws. While Redis is away the shared client fails fast
 * (its offline queue is off) and the nudge is dropped; the relay's poller and its reconnect hook pick the
 * backlog up. Nudges within a few milliseconds are coalesced into a single PUBLISH: under load that is one
 * Redis write per window instead of one per commit, and the relay gathers for longer than that anyway.
 */
const COALESCE_MS = 5;

@Injectable()
export class AuditRelaySignal {
  private scheduled = false;
  private readonly channel: string;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    // Absent in processes without Redis (the CLI): committed events then wait for the relay's poller.
    @Optional() @Inject(REDIS) private readonly redis?: Redis,
  ) {
    this.channel = auditRelayChannel(config.audit.stream);
  }

  /** Asks the relay to run soon. Returns at once. */
  nudge(): void {
    if (!this.redis || this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      const redis = this.redis;
      if (!redis || redis.status !== 'ready') return;
      redis.publish(this.channel, '1').catch(() => undefined);
    }, COALESCE_MS).unref();
  }
}
