import type { EntityManager } from 'typeorm';

/** The audit outbox: rows not yet relayed to the stream, and how old the oldest is. */
export interface OutboxBacklog {
  pending: number;
  oldestOccurredAt: Date | null;
}

/**
 * Cross-process facts read at scrape time (the worker has no HTTP port, so the API reports them from the
 * database). The outbox backlog is one indexed read; the two counts over the retained history scan it, so the
 * API reads them at most once a minute.
 */
export class MetricsRepository {
  constructor(private readonly manager: EntityManager) {}

  /** Unpublished audit events (partial index `audit_events_unpublished_idx`). */
  async outboxBacklog(): Promise<OutboxBacklog> {
    const rows: { pending: string; oldest: Date | null }[] = await this.manager.query(
      'SELECT count(*) AS pending, min(occurred_at) AS oldest FROM audit_events WHERE published_at IS NULL',
    );
    return { pending: Number(rows[0]?.pending ?? 0), oldestOccurredAt: rows[0]?.oldest ?? null };
  }

  /**
   * The two counts over the retained history, in one transaction whose statements Postgres cancels after
   * `timeoutMs`: a scrape must not wait long for them.
   */
  async historyCounts(
    timeoutMs: number,
  ): Promise<{ rotations: Map<string, number>; deliveries: Map<string, number> | null }> {
    return this.manager.transaction(async (m) => {
      await m.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.trunc(timeoutMs))}`);
      const within = new MetricsRepository(m);
      return { rotations: await within.rotationsByTrigger(), deliveries: await within.deliveryOutcomes() };
    });
  }

  /** Secret rotations in the retained audit history, by trigger (`manual`, `scheduled`). */
  async rotationsByTrigger(): Promise<Map<string, number>> {
    const rows: { trigger: string | null; n: string }[] = await this.manager.query(
      `SELECT event->'data'->>'trigger' AS trigger, count(*) AS n FROM audit_events
        WHERE type = 'webhook.secret.rotated' GROUP BY 1`,
    );
    return new Map(rows.map((r) => [r.trigger ?? 'unknown', Number(r.n)]));
  }

  /**
   * Delivery rows by status, or null while the deliveries table does not exist (the delivery feature ships
   * its own migration).
   */
  async deliveryOutcomes(): Promise<Map<string, number> | null> {
    const exists: { t: string | null }[] = await this.manager.query(
      `SELECT to_regclass('deliveries')::text AS t`,
    );
    if (!exists[0]?.t) return null;
    const rows: { status: string; n: string }[] = await this.manager.query(
      'SELECT status, count(*) AS n FROM deliveries GROUP BY status',
    );
    return new Map(rows.map((r) => [r.status, Number(r.n)]));
  }
}
