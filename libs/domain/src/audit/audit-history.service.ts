import { rfc3339Instant } from '@app/validation';
import { Inject, Injectable } from '@nestjs/common';
import { createHmac } from 'node:crypto';
import { toAuditEvent, type AuditEvent, type AuditEventType } from '@app/audit';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/persistence';
import type { RequestContext } from '../request-context';
import { AuditCursorCodec, type AuditCursorScope } from './audit-cursor.codec';

/** Filters of the audit history, already validated by the caller. Timestamps are RFC 3339 strings. */
export interface AuditHistoryInput {
  webhookId?: string;
  type?: AuditEventType;
  since?: string;
  until?: string;
  /** 1..200; 50 when absent. */
  limit?: number;
  cursor?: string;
}

/** One page of history and the cursor of the next one (null on the last page). */
export interface AuditHistoryPage {
  events: AuditEvent[];
  nextCursor: string | null;
}

const DEFAULT_LIMIT = 50;

/** The project's audit history, read from the Postgres outbox/history table. */
@Injectable()
export class AuditHistoryService {
  private readonly cursors: AuditCursorCodec;

  constructor(
    private readonly db: Database,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    // Keys of their own, derived from the at-rest keys: cursors are then unforgeable without any new setting.
    // Made with the first key's and taken with any key's, so cursors pass between replicas throughout a key
    // rotation's rollout; dropping a key only invalidates cursors in flight, which clients restart from page one.
    this.cursors = new AuditCursorCodec(
      config.secrets.keyRing.map(({ key }) => createHmac('sha256', key).update('audit-cursor/v1').digest()),
    );
  }

  /** Newest first, only the caller's project; filters combine with AND; `since`/`until` are inclusive. */
  async list(ctx: RequestContext, input: AuditHistoryInput): Promise<AuditHistoryPage> {
    const limit = input.limit ?? DEFAULT_LIMIT;
    // Inclusive bounds at the stored (millisecond) precision; the cursor is bound to the instants, so another
    // spelling of the same instant (`…10Z`, `…10.000Z`) keeps paging.
    const since = input.since !== undefined ? rfc3339Instant(input.since, 'ceil') : undefined;
    const until = input.until !== undefined ? rfc3339Instant(input.until, 'floor') : undefined;
    const scope: AuditCursorScope = {
      projectId: ctx.projectId,
      webhookId: input.webhookId,
      type: input.type,
      since: since?.toISOString(),
      until: until?.toISOString(),
    };
    const before = input.cursor !== undefined ? this.cursors.decode(input.cursor, scope) : undefined;
    const rows = await this.db.repos.auditEvents.history({
      projectId: ctx.projectId,
      webhookId: input.webhookId,
      type: input.type,
      since,
      until,
      before,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      events: page.map((r) => toAuditEvent(r.event)),
      nextCursor:
        rows.length > limit && last
          ? this.cursors.encode({ occurredAt: last.occurredAt, seq: last.seq }, scope)
          : null,
    };
  }
}
