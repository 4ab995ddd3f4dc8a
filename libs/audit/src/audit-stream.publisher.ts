import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { REDIS } from '@app/queue';
import type { AuditEvent } from './audit-event.types';

/**
 * Appends audit events to the `AUDIT_STREAM` Redis stream, in the given order, in one pipelined round trip.
 * Each entry has the fields `type`, `project_id` and `event` (the JSON envelope); the stream is capped
 * approximately at `AUDIT_STREAM_MAXLEN` (`~` lets Redis trim whole macro-nodes, which is far cheaper).
 */
@Injectable()
export class AuditStreamPublisher {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Publishes `events` in order; throws if any of them may not have been appended (the caller retries all). */
  async publish(events: AuditEvent[]): Promise<string[]> {
    if (events.length === 0) return [];
    const { stream, streamMaxLen } = this.config.audit;
    const pipeline = this.redis.pipeline();
    for (const e of events) {
      pipeline.xadd(
        stream,
        'MAXLEN',
        '~',
        streamMaxLen,
        '*',
        'type',
        e.type,
        'project_id',
        e.project_id,
        'event',
        JSON.stringify(e),
      );
    }
    const results = (await pipeline.exec()) ?? [];
    if (results.length !== events.length) throw new Error('audit stream pipeline was interrupted');
    return results.map(([err, id]) => {
      if (err) throw err;
      return String(id);
    });
  }
}
