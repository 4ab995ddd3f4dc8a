import type { EntityManager } from 'typeorm';
import type { AuditEventEntity } from '../entities/audit-event.entity';

/** A new audit event for the outbox. */
export type NewAuditEvent = Pick<
  AuditEventEntity,
  'id' | 'projectId' | 'webhookId' | 'type' | 'occurredAt' | 'event'
>;

/** An outbox row waiting for the relay. */
export interface UnpublishedAuditEvent {
  seq: string;
  event: Record<string, unknown>;
}

/** Filters and position of one page of project history, newest first. */
export interface AuditHistoryQuery {
  projectId: string;
  webhookId?: string;
  type?: string;
  since?: Date;
  until?: Date;
  /** Rows strictly older than this (occurred_at, seq) position; absent for the first page. */
  before?: { occurredAt: Date; seq: string };
  limit: number;
}

/** One row of project history. */
export interface AuditHistoryRow {
  seq: string;
  occurredAt: Date;
  event: Record<string, unknown>;
}

// One relay at a time per database: the outbox has a single lane, published in seq order. A transaction-scoped
// advisory lock is released by the commit or the rollback, and by the server if the relay's connection dies.
const RELAY_LOCK_KEY = 7_345_112_001;

/** The audit outbox and history. */
export class AuditEventsRepository {
  constructor(private readonly manager: EntityManager) {}

  /** Appends events to the outbox, in order; commits with the caller's transaction. */
  async append(events: NewAuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    const params: unknown[] = [];
    const rows = events.map((e) => {
      params.push(e.id, e.projectId, e.webhookId, e.type, e.occurredAt, JSON.stringify(e.event));
      const n = params.length;
      return `($${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n}::jsonb)`;
    });
    await this.manager.query(
      `INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event) VALUES ${rows.join(', ')}`,
      params,
    );
  }

  /**
   * Appends many events in one statement with a single JSON parameter: no per-row placeholders to bind,
   * which keeps large batches (a rotation sweep) cheap. Same rows as {@link append}, in order.
   */
  async appendMany(events: NewAuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.manager.query(
      `INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event)
       SELECT e->>'id', (e->>'project_id')::uuid, e->>'webhook_id', e->>'type', (e->>'occurred_at')::timestamptz,
              e->'event'
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(e, n)
       ORDER BY n`,
      [
        JSON.stringify(
          events.map((e) => ({
            id: e.id,
            project_id: e.projectId,
            webhook_id: e.webhookId,
            type: e.type,
            occurred_at: e.occurredAt.toISOString(),
            event: e.event,
          })),
        ),
      ],
    );
  }

  /**
   * Takes the relay lane for the current transaction without waiting; false when another relay holds it.
   * Only meaningful inside a transaction. Deliberately its own statement, before {@link unpublished}: under
   * READ COMMITTED a statement's snapshot is taken when it starts, so a lock taken inside the same SELECT
   * could be granted just after the previous holder committed, yet read that holder's rows as unpublished.
   */
  async tryLockRelayLane(): Promise<boolean> {
    const rows: { locked: boolean }[] = await this.manager.query(
      'SELECT pg_try_advisory_xact_lock($1) AS locked',
      [RELAY_LOCK_KEY],
    );
    return rows[0]?.locked === true;
  }

  /** The oldest unpublished events, in commit (seq) order. */
  async unpublished(limit: number): Promise<UnpublishedAuditEvent[]> {
    return this.manager.query(
      'SELECT seq, event FROM audit_events WHERE published_at IS NULL ORDER BY seq LIMIT $1',
      [limit],
    );
  }

  /** Marks events as relayed to the stream. */
  async markPublished(seqs: string[], at: Date): Promise<void> {
    if (seqs.length === 0) return;
    await this.manager.query('UPDATE audit_events SET published_at = $2 WHERE seq = ANY($1::bigint[])', [
      seqs,
      at,
    ]);
  }

  /** One page of a project's history, newest first (occurred_at, then seq, both descending). */
  async history(q: AuditHistoryQuery): Promise<AuditHistoryRow[]> {
    const params: unknown[] = [q.projectId];
    const where = ['project_id = $1'];
    const add = (sql: (n: number) => string, value: unknown): void => {
      params.push(value);
      where.push(sql(params.length));
    };
    if (q.webhookId !== undefined) add((n) => `webhook_id = $${n}`, q.webhookId);
    if (q.type !== undefined) add((n) => `type = $${n}`, q.type);
    if (q.since !== undefined) add((n) => `occurred_at >= $${n}`, q.since);
    if (q.until !== undefined) add((n) => `occurred_at <= $${n}`, q.until);
    if (q.before !== undefined) {
      params.push(q.before.occurredAt, q.before.seq);
      where.push(`(occurred_at, seq) < ($${params.length - 1}, $${params.length}::bigint)`);
    }
    params.push(q.limit);
    const rows: { seq: string; occurred_at: Date; event: Record<string, unknown> }[] =
      await this.manager.query(
        `SELECT seq, occurred_at, event FROM audit_events WHERE ${where.join(' AND ')}
         ORDER BY occurred_at DESC, seq DESC LIMIT $${params.length}`,
        params,
      );
    return rows.map((r) => ({ seq: r.seq, occurredAt: r.occurred_at, event: r.event }));
  }

  /**
   * Deletes up to `limit` published events that occurred before `cutoff`; returns how many. Unpublished rows
   * are never deleted, however old: they are still owed to the stream.
   */
  async purgePublishedBefore(cutoff: Date, limit: number): Promise<number> {
    // TypeORM answers a DELETE with [rows, rowCount].
    const [, deleted]: [unknown[], number] = await this.manager.query(
      `DELETE FROM audit_events WHERE seq IN (
         SELECT seq FROM audit_events
         WHERE occurred_at < $1 AND published_at IS NOT NULL
         ORDER BY occurred_at LIMIT $2)
       RETURNING seq`,
      [cutoff, limit],
    );
    return deleted;
  }
}
