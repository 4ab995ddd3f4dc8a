import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Every {@link DeliveryStatus}, in the order of a delivery's life. */
export const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed', 'dead'] as const;
/** Where a delivery stands: waiting for (another) attempt, or one of the three final states. */
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/**
 * One event for one webhook, and the record of its attempts. The id is the `Anchor-Delivery-Id`, identical
 * across retries. `payload` is the exact body text that is signed and sent on every attempt.
 */
@Entity({ name: 'deliveries' })
export class DeliveryEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'webhook_id', type: 'text' })
  webhookId!: string;

  @Column({ name: 'project_id', type: 'uuid' })
  projectId!: string;

  @Column({ name: 'external_event_id', type: 'text' })
  externalEventId!: string;

  @Column({ name: 'event_type', type: 'text' })
  eventType!: string;

  @Column({ type: 'text' })
  payload!: string;

  @Column({ type: 'text' })
  status!: DeliveryStatus;

  /** Attempts started so far. */
  @Column({ type: 'integer' })
  attempt!: number;

  @Column({ name: 'response_status', type: 'integer', nullable: true })
  responseStatus!: number | null;

  @Column({ name: 'error_message', type: 'text', nullable: true })
  errorMessage!: string | null;

  /** When the next attempt is due while pending (or the running attempt was due); when the last attempt started once done. */
  @Column({ name: 'scheduled_at', type: 'timestamptz' })
  scheduledAt!: Date;

  /** When the latest attempt was claimed (it went out then); null before the first, and on rows from before. */
  @Column({ name: 'attempted_at', type: 'timestamptz', nullable: true })
  attemptedAt!: Date | null;

  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true })
  completedAt!: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
