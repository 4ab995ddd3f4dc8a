import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * How often a webhook's signing secret is rotated by the worker, and how long the outgoing secret keeps
 * signing. `webhookId` null: the project default, followed by every webhook of the project without its own.
 */
@Entity({ name: 'rotation_policies' })
export class RotationPolicyEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'project_id', type: 'uuid' })
  projectId!: string;

  @Column({ name: 'webhook_id', type: 'text', nullable: true })
  webhookId!: string | null;

  @Column({ name: 'interval_days', type: 'integer' })
  intervalDays!: number;

  @Column({ name: 'grace_period_hours', type: 'integer' })
  gracePeriodHours!: number;

  /** Kept across updates: a policy's creation starts its clock. */
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
