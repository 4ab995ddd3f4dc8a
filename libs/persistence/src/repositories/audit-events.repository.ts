import type { EntityManager } from 'typeorm';
import type { AuditEventEntity } from '../entities/audit-event.entity';

/** A new audit event for the outbox. */
export type NewAuditEvent = Pick<
  AuditEventEntity,
  'id' | 'projectId' | 'webhookId' | 'type' | 'occurredAt' | 'event'
>;

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
}
