import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Whether a secret is the one new deliveries are signed with, or a previous one still inside its grace period. */
export type SecretState = 'current' | 'previous';
/** What created a secret. */
export type SecretTrigger = 'created' | 'manual' | 'scheduled';

/**
 * A signing secret, encrypted at rest (AES-256-GCM). Never hashed: the sender must sign with it.
 * Destroyed (row deleted) when its grace period ends or its webhook is deleted.
 */
@Entity({ name: 'webhook_secrets' })
export class WebhookSecretEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'webhook_id', type: 'text' })
  webhookId!: string;

  @Column({ type: 'text' })
  state!: SecretState;

  @Column({ type: 'text' })
  trigger!: SecretTrigger;

  /** False only for a secret made by a scheduled rotation that the project has not fetched yet. */
  @Column({ type: 'boolean' })
  claimed!: boolean;

  /** Id of the key-ring key that encrypted `ciphertext`. */
  @Column({ name: 'key_id', type: 'text' })
  keyId!: string;

  /** iv (12 bytes) || ciphertext || GCM tag (16 bytes). */
  @Column({ type: 'bytea' })
  ciphertext!: Buffer;

  /** `sha256:` + the first 16 hex characters of SHA-256 over the secret. */
  @Column({ type: 'text' })
  fingerprint!: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /** When a previous secret stops signing; null for the current one. */
  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt!: Date | null;
}
