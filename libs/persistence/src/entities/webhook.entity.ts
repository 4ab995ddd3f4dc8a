import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A registered webhook. Deletion is soft (`deleted_at`) so the delivery log keeps its reference. */
@Entity({ name: 'webhooks' })
export class WebhookEntity {
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ name: 'project_id', type: 'uuid' })
  projectId!: string;

  @Column({ type: 'text' })
  url!: string;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  @Column({ name: 'subscribed_events', type: 'text', array: true })
  subscribedEvents!: string[];

  @Column({ type: 'boolean' })
  enabled!: boolean;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  @Column({ name: 'deleted_at', type: 'timestamptz', nullable: true })
  deletedAt!: Date | null;

  /**
   * The time of the last change that leaves `updated_at` alone (a rotation policy set or removed, a secret
   * claimed, previous secrets revoked); null before the first. Internal: it only orders the next change.
   */
  @Column({ name: 'last_change_at', type: 'timestamptz', nullable: true })
  lastChangeAt!: Date | null;
}
