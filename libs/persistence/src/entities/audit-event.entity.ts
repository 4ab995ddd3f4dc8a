import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * One audit event. The table is both the transactional outbox (rows with `published_at` null wait for the
 * relay) and the project's audit history served by the API, kept for the retention period.
 */
@Entity({ name: 'audit_events' })
export class AuditEventEntity {
  /** Commit order; the relay publishes in this order, which keeps every webhook's events in order. */
  @PrimaryGeneratedColumn({ type: 'bigint' })
  seq!: string;

  @Column({ type: 'text', unique: true })
  id!: string;

  @Column({ name: 'project_id', type: 'uuid' })
  projectId!: string;

  @Column({ name: 'webhook_id', type: 'text', nullable: true })
  webhookId!: string | null;

  @Column({ type: 'text' })
  type!: string;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  /** The full event envelope as published. */
  @Column({ type: 'jsonb' })
  event!: Record<string, unknown>;

  @Column({ name: 'published_at', type: 'timestamptz', nullable: true })
  publishedAt!: Date | null;
}
