import type { EntityManager } from 'typeorm';
import type { DeliveryEntity, DeliveryStatus } from '../entities/delivery.entity';

/**
 * A delivery row to create; every delivery starts pending with no attempt made. `createdAtOffsetMicros` (0 when
 * absent) moves its `created_at` that many microseconds later than `createdAt`, which a JavaScript Date cannot.
 */
export type NewDelivery = Pick<
  DeliveryEntity,
  'id' | 'webhookId' | 'projectId' | 'externalEventId' | 'eventType' | 'payload' | 'scheduledAt' | 'createdAt'
> & { createdAtOffsetMicros?: number };

/**
 * Rows and payload characters per INSERT statement: a batch of large events fanned out to many webhooks goes in
 * several statements of bounded size (one transaction all the same), never one statement of hundreds of MB.
 */
const INSERT_MAX_ROWS = 1000;
const INSERT_MAX_PAYLOAD_CHARS = 8 * 1024 * 1024;

/** A live, enabled webhook that an event of its project may be fanned out to. */
export interface Subscriber {
  id: string;
  projectId: string;
  subscribedEvents: string[];
}

/** A delivery whose attempt this caller has claimed, with what the attempt needs to know about its webhook. */
export interface ClaimedDelivery {
  id: string;
  webhookId: string;
  projectId: string;
  eventType: string;
  payload: string;
  attempt: number;
  url: string;
  webhookDeleted: boolean;
  /** False once the webhook is disabled: its pending deliveries are not sent any more. */
  webhookEnabled: boolean;
}

/** The result of one attempt, to be written back. */
export interface AttemptOutcome {
  id: string;
  attempt: number;
  status: DeliveryStatus;
  responseStatus: number | null;
  errorMessage: string | null;
  /** Due time of the next attempt when still pending; the attempt's start otherwise. */
  scheduledAt: Date;
  completedAt: Date | null;
}

/** A pending delivery past its due time, as the stranded-delivery rescue sees it. */
export interface StrandedDelivery {
  id: string;
  projectId: string;
  webhookId: string;
  /** The latest attempt claimed (0: none yet). */
  attempt: number;
  /** When the next attempt is due, or, if the latest attempt's outcome was never written, when that one was. */
  scheduledAt: Date;
  /** When the latest attempt was claimed; null before the first (and on rows from before the column). */
  attemptedAt: Date | null;
}

/** Filters of the delivery log. */
export interface DeliveryLogFilter {
  webhookId: string;
  status?: DeliveryStatus;
  eventType?: string;
  since?: Date;
  until?: Date;
}

/** The delivery log and the bookkeeping of attempts. Batch methods take arrays so hot paths make one round trip. */
export class DeliveriesRepository {
  constructor(private readonly manager: EntityManager) {}

  /** Live, enabled webhooks of the given projects (subscription filtering is the caller's). */
  async findSubscribers(projectIds: string[]): Promise<Subscriber[]> {
    if (projectIds.length === 0) return [];
    const rows: { id: string; project_id: string; subscribed_events: string[] }[] = await this.manager.query(
      `SELECT id, project_id, subscribed_events FROM webhooks
        WHERE project_id = ANY($1::uuid[]) AND enabled AND deleted_at IS NULL
        ORDER BY created_at, id`,
      [projectIds],
    );
    return rows.map((r) => ({ id: r.id, projectId: r.project_id, subscribedEvents: r.subscribed_events }));
  }

  /**
   * Inserts deliveries, skipping any (event, webhook) pair that already has one. Returns the ids of the rows
   * really inserted. A batch of events read together shares one time; the caller orders them with
   * `createdAtOffsetMicros` (the n-th event of the batch n - 1 µs later), so the delivery log lists them, newest
   * first, in reverse of their order instead of in the random order of their ids. Goes in statements of at most
   * {@link INSERT_MAX_ROWS} rows and about {@link INSERT_MAX_PAYLOAD_CHARS} payload characters.
   */
  async insertMany(rows: NewDelivery[]): Promise<string[]> {
    const ids: string[] = [];
    for (let start = 0; start < rows.length;) {
      let end = start + 1;
      for (
        let chars = rows[start].payload.length;
        end < rows.length && end - start < INSERT_MAX_ROWS;
        end++
      ) {
        chars += rows[end].payload.length;
        if (chars > INSERT_MAX_PAYLOAD_CHARS) break;
      }
      ids.push(...(await this.insertChunk(rows.slice(start, end))));
      start = end;
    }
    return ids;
  }

  private async insertChunk(rows: NewDelivery[]): Promise<string[]> {
    const inserted: { id: string }[] = await this.manager.query(
      `INSERT INTO deliveries
         (id, webhook_id, project_id, external_event_id, event_type, payload, status, attempt, scheduled_at, created_at)
       SELECT id, webhook_id, project_id, external_event_id, event_type, payload, 'pending', 0, scheduled_at,
              created_at + offset_micros * interval '1 microsecond'
         FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::timestamptz[], $9::int[])
           AS t(id, webhook_id, project_id, external_event_id, event_type, payload, scheduled_at, created_at,
                offset_micros)
       ON CONFLICT (external_event_id, webhook_id) DO NOTHING
       RETURNING id`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.webhookId),
        rows.map((r) => r.projectId),
        rows.map((r) => r.externalEventId),
        rows.map((r) => r.eventType),
        rows.map((r) => r.payload),
        rows.map((r) => r.scheduledAt),
        rows.map((r) => r.createdAt),
        rows.map((r) => r.createdAtOffsetMicros ?? 0),
      ],
    );
    return inserted.map((r) => r.id);
  }

  /** Existing deliveries of the given (event, webhook) pairs that still wait for their first attempt. */
  async findAwaitingFirstAttempt(
    pairs: { externalEventId: string; webhookId: string }[],
  ): Promise<{ id: string; projectId: string; webhookId: string; scheduledAt: Date }[]> {
    if (pairs.length === 0) return [];
    const rows: { id: string; project_id: string; webhook_id: string; scheduled_at: Date }[] =
      await this.manager.query(
        `SELECT d.id, d.project_id, d.webhook_id, d.scheduled_at FROM deliveries d
         JOIN unnest($1::text[], $2::text[]) AS p(external_event_id, webhook_id)
           ON d.external_event_id = p.external_event_id AND d.webhook_id = p.webhook_id
        WHERE d.status = 'pending' AND d.attempt = 0`,
        [pairs.map((p) => p.externalEventId), pairs.map((p) => p.webhookId)],
      );
    return rows.map((r) => ({
      id: r.id,
      projectId: r.project_id,
      webhookId: r.webhook_id,
      scheduledAt: r.scheduled_at,
    }));
  }

  /**
   * Claims attempt number `attempt` of each delivery: succeeds only for a pending delivery whose previous
   * attempt is `attempt - 1`, so a duplicated job can never send the same attempt twice, and records `now` as the
   * attempt's start. Only `attempt` and `attempted_at` change (no indexed column), so Postgres can update the row
   * in place (HOT) on this hot path.
   */
  async claimAttempts(claims: { id: string; attempt: number }[], now: Date): Promise<ClaimedDelivery[]> {
    if (claims.length === 0) return [];
    const rows: {
      id: string;
      webhook_id: string;
      project_id: string;
      event_type: string;
      payload: string;
      attempt: number;
      url: string;
      webhook_deleted: boolean;
      webhook_enabled: boolean;
    }[] = returned(
      await this.manager.query(
        `UPDATE deliveries d SET attempt = c.attempt, attempted_at = $3
         FROM unnest($1::uuid[], $2::int[]) AS c(id, attempt), webhooks w
        WHERE d.id = c.id AND d.status = 'pending' AND d.attempt = c.attempt - 1 AND w.id = d.webhook_id
       RETURNING d.id, d.webhook_id, d.project_id, d.event_type, d.payload, d.attempt, w.url,
                 (w.deleted_at IS NOT NULL) AS webhook_deleted, w.enabled AS webhook_enabled`,
        [claims.map((c) => c.id), claims.map((c) => c.attempt), now],
      ),
    );
    return rows.map((r) => ({
      id: r.id,
      webhookId: r.webhook_id,
      projectId: r.project_id,
      eventType: r.event_type,
      payload: r.payload,
      attempt: r.attempt,
      url: r.url,
      webhookDeleted: r.webhook_deleted,
      webhookEnabled: r.webhook_enabled,
    }));
  }

  /** Writes the outcome of claimed attempts (ignored for an attempt that is no longer the latest). */
  async recordOutcomes(outcomes: AttemptOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    await this.manager.query(
      `UPDATE deliveries d
          SET status = o.status, response_status = o.response_status, error_message = o.error_message,
              scheduled_at = o.scheduled_at, completed_at = o.completed_at
         FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::timestamptz[])
           AS o(id, attempt, status, response_status, error_message, scheduled_at, completed_at)
        WHERE d.id = o.id AND d.attempt = o.attempt AND d.status = 'pending'`,
      [
        outcomes.map((o) => o.id),
        outcomes.map((o) => o.attempt),
        outcomes.map((o) => o.status),
        outcomes.map((o) => o.responseStatus),
        outcomes.map((o) => o.errorMessage),
        outcomes.map((o) => o.scheduledAt),
        outcomes.map((o) => o.completedAt),
      ],
    );
  }

  /**
   * One page of a webhook's delivery log, newest first, and how many rows match in all.
   *
   * The page is found on the index alone (id and created_at of the matching rows, skipping `offset` of them), and
   * only its rows are then read whole: a large `offset` walks index entries, not the rows it skips (on a webhook
   * with 1.3M deliveries, offset 500,000 went from about 650 ms to 150 ms). The count is skipped when the page
   * itself says how many match: a page shorter than `limit` that is the first or holds rows ends the list.
   */
  async page(
    filter: DeliveryLogFilter,
    limit: number,
    offset: number,
  ): Promise<{ rows: DeliveryEntity[]; total: number }> {
    const where = ['webhook_id = $1'];
    const params: unknown[] = [filter.webhookId];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.status !== undefined) add('status = ?', filter.status);
    if (filter.eventType !== undefined) add('event_type = ?', filter.eventType);
    if (filter.since !== undefined) add('scheduled_at >= ?', filter.since);
    if (filter.until !== undefined) add('scheduled_at <= ?', filter.until);
    const clause = where.join(' AND ');
    const rows: Record<string, unknown>[] = await this.manager.query(
      `SELECT d.* FROM (
         SELECT id, created_at FROM deliveries WHERE ${clause} ORDER BY created_at DESC, id DESC
          LIMIT $${params.length + 1} OFFSET $${params.length + 2}) k
       JOIN deliveries d ON d.id = k.id
       ORDER BY k.created_at DESC, k.id DESC`,
      [...params, limit, offset],
    );
    if (rows.length < limit && (rows.length > 0 || offset === 0)) {
      return { rows: rows.map(toEntity), total: offset + rows.length };
    }
    const counted: { n: number }[] = await this.manager.query(
      `SELECT count(*)::int AS n FROM deliveries WHERE ${clause}`,
      params,
    );
    return { rows: rows.map(toEntity), total: counted[0].n };
  }

  /** Deletes up to `limit` deliveries created before `cutoff`; returns how many. */
  async purgeCreatedBefore(cutoff: Date, limit: number): Promise<number> {
    const deleted: { id: string }[] = returned(
      await this.manager.query(
        `DELETE FROM deliveries WHERE id IN (
           SELECT id FROM deliveries WHERE created_at < $1 ORDER BY created_at LIMIT $2)
         RETURNING id`,
        [cutoff, limit],
      ),
    );
    return deleted.length;
  }

  /** Pending deliveries whose next attempt (or last claimed one) is older than `before`: their job was lost. */
  async findStranded(
    before: Date,
    limit: number,
    after?: { scheduledAt: Date; id: string },
  ): Promise<StrandedDelivery[]> {
    const rows: {
      id: string;
      project_id: string;
      webhook_id: string;
      attempt: number;
      scheduled_at: Date;
      attempted_at: Date | null;
    }[] = await this.manager.query(
      `SELECT id, project_id, webhook_id, attempt, scheduled_at, attempted_at FROM deliveries
        WHERE status = 'pending' AND scheduled_at < $1
          AND ($3::timestamptz IS NULL OR (scheduled_at >= $3 AND (scheduled_at, id) > ($3::timestamptz, $4::uuid)))
        ORDER BY scheduled_at, id LIMIT $2`,
      [before, limit, after?.scheduledAt ?? null, after?.id ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      projectId: r.project_id,
      webhookId: r.webhook_id,
      attempt: r.attempt,
      scheduledAt: r.scheduled_at,
      attemptedAt: r.attempted_at,
    }));
  }
}

/** TypeORM answers UPDATE and DELETE with `[rows, affected]` but INSERT and SELECT with the rows alone. */
function returned<T>(result: T[] | [T[], number]): T[] {
  return result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number'
    ? result[0]
    : (result as T[]);
}

function toEntity(r: Record<string, unknown>): DeliveryEntity {
  return {
    id: r.id as string,
    webhookId: r.webhook_id as string,
    projectId: r.project_id as string,
    externalEventId: r.external_event_id as string,
    eventType: r.event_type as string,
    payload: r.payload as string,
    status: r.status as DeliveryStatus,
    attempt: r.attempt as number,
    responseStatus: r.response_status as number | null,
    errorMessage: r.error_message as string | null,
    scheduledAt: r.scheduled_at as Date,
    attemptedAt: (r.attempted_at as Date | null | undefined) ?? null,
    completedAt: r.completed_at as Date | null,
    createdAt: r.created_at as Date,
  };
}
