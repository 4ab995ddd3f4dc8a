import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** An API key. Only the SHA-256 hash of the key is stored; the key itself is shown once, at creation. */
@Entity({ name: 'api_keys' })
export class ApiKeyEntity {
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Index('api_keys_project_idx')
  @Column({ name: 'project_id', type: 'uuid' })
  projectId!: string;

  @Column({ type: 'text', nullable: true })
  name!: string | null;

  @Index('api_keys_key_hash_key', { unique: true })
  @Column({ name: 'key_hash', type: 'text' })
  keyHash!: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;
}
