import type { EntityManager } from 'typeorm';
import { IsNull } from 'typeorm';
import { ApiKeyEntity } from '../entities/api-key.entity';
import type { NamedStatement, StatementRunner } from '../statements';

/** Who an API key authenticates. */
export interface ApiKeyPrincipal {
  apiKeyId: string;
  projectId: string;
}

const FIND_ACTIVE_BY_HASH: NamedStatement = {
  name: 'api_key_find_active',
  text: 'SELECT id, project_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
};

/** API keys, looked up by hash only. */
export class ApiKeysRepository {
  constructor(
    private readonly manager: EntityManager,
    private readonly statements: StatementRunner,
  ) {}

  private get repo() {
    return this.manager.getRepository(ApiKeyEntity);
  }

  async insert(row: ApiKeyEntity): Promise<void> {
    await this.repo.insert(row);
  }

  /** The principal of a key that exists and is not revoked, or null. */
  async findActiveByHash(keyHash: string): Promise<ApiKeyPrincipal | null> {
    const rows = await this.statements.rows<{ id: string; project_id: string }>(FIND_ACTIVE_BY_HASH, [
      keyHash,
    ]);
    return rows.length === 0 ? null : { apiKeyId: rows[0].id, projectId: rows[0].project_id };
  }

  async findById(id: string): Promise<ApiKeyEntity | null> {
    return this.repo.findOneBy({ id });
  }

  async listByProject(projectId: string): Promise<ApiKeyEntity[]> {
    return this.repo.find({ where: { projectId }, order: { createdAt: 'ASC', id: 'ASC' } });
  }

  /** Marks a key revoked; returns false when it does not exist or was already revoked. */
  async revoke(id: string, at: Date): Promise<boolean> {
    const res = await this.repo.update({ id, revokedAt: IsNull() }, { revokedAt: at });
    return (res.affected ?? 0) > 0;
  }
}
