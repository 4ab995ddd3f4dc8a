import { Injectable } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { AuditRecorder, type Actor } from '@app/audit';
import { blankCredentialLike } from '@app/config';
import {
  ApiKeyChangeBarrier,
  ApiKeyEntity,
  Database,
  type ApiKeyPrincipal,
  type KeyChangeConfirmation,
} from '@app/persistence';
import { Clock } from '../clock';
import { NotFoundError } from '../errors';
import { newApiKeyId, newUuid } from '../ids';

/** A newly minted key, shown once. */
export interface CreatedApiKey {
  api_key_id: string;
  project_id: string;
  api_key: string;
  name: string | null;
}

/** An API key as listed: never the key, never its hash. */
export interface ApiKeySummary {
  api_key_id: string;
  project_id: string;
  name: string | null;
  created_at: string;
  revoked_at: string | null;
}

// Keys are 32 random bytes; SHA-256 without a salt is the right hash for high-entropy tokens (no dictionary
// to attack) and keeps the per-request lookup a single indexed equality.
const hashKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');
const MAX_KEY_LENGTH = 256;

/** Told, after the commit, that the key with this hash changed in this process (see {@link ApiKeysService.onChange}). */
export type ApiKeyChangeObserver = (keyHash: string) => void;

/** Minting, listing, revoking and checking API keys. */
@Injectable()
export class ApiKeysService {
  private readonly observers: ApiKeyChangeObserver[] = [];

  constructor(
    private readonly db: Database,
    private readonly audit: AuditRecorder,
    private readonly clock: Clock,
    private readonly barrier: ApiKeyChangeBarrier,
  ) {}

  /** Mints a key for `projectId` (a new project when absent). Only the key's hash is stored. */
  async create(input: { projectId?: string; name?: string | null; actor: Actor }): Promise<CreatedApiKey> {
    const now = this.clock.now();
    const apiKey = `ak_${randomBytes(32).toString('base64url')}`;
    const row = new ApiKeyEntity();
    row.id = newApiKeyId();
    row.projectId = input.projectId ?? newUuid();
    row.name = input.name ?? null;
    row.keyHash = hashKey(apiKey);
    row.createdAt = now;
    row.revokedAt = null;
    await this.db.transaction(async (tx) => {
      await tx.apiKeys.insert(row);
      await this.audit.record(tx, {
        type: 'api_key.created',
        projectId: row.projectId,
        webhookId: null,
        actor: input.actor,
        requestId: null,
        occurredAt: now,
        // A name is the operator's free text: one that quotes a key by mistake must not carry it into the history.
        data: { api_key_id: row.id, name: blankCredentialLike(row.name) },
      });
    });
    return { api_key_id: row.id, project_id: row.projectId, api_key: apiKey, name: row.name };
  }

  async list(projectId: string): Promise<ApiKeySummary[]> {
    const rows = await this.db.repos.apiKeys.listByProject(projectId);
    return rows.map((r) => ({
      api_key_id: r.id,
      project_id: r.projectId,
      name: r.name,
      created_at: r.createdAt.toISOString(),
      revoked_at: r.revokedAt?.toISOString() ?? null,
    }));
  }

  /**
   * Observes keys changed by this process, right after the commit: a cache in the same process forgets them
   * at once, before the database's change notification (which tells every other process) has arrived.
   */
  onChange(observer: ApiKeyChangeObserver): void {
    this.observers.push(observer);
  }

  /**
   * Revokes a key. Returns once every API replica has dropped the key from its lookup cache (see
   * {@link ApiKeyChangeBarrier}), so requests sent from then on get 401; replicas that did not confirm within
   * the bounded wait are reported.
   */
  async revoke(apiKeyId: string, actor: Actor): Promise<KeyChangeConfirmation> {
    const now = this.clock.now();
    return this.barrier.around(() =>
      this.db.transaction(async (tx) => {
        const row = await tx.apiKeys.findById(apiKeyId);
        if (!row) throw new NotFoundError(`no API key ${apiKeyId}`);
        // Revoked before (or just now, by another revoke): nothing more to do, nor to audit.
        if (row.revokedAt !== null)
          throw new NotFoundError(
            `API key ${apiKeyId} was already revoked at ${row.revokedAt.toISOString()}`,
          );
        if (!(await tx.apiKeys.revoke(apiKeyId, now)))
          throw new NotFoundError(`API key ${apiKeyId} was already revoked`);
        tx.afterCommit(() => {
          for (const observe of this.observers) observe(row.keyHash);
        });
        await this.audit.record(tx, {
          type: 'api_key.revoked',
          projectId: row.projectId,
          webhookId: null,
          actor,
          requestId: null,
          occurredAt: now,
          data: { api_key_id: apiKeyId },
        });
        return row.keyHash;
      }),
    );
  }

  /** The lookup hash of a key, or null when there is no key or it cannot be one (too long). */
  hashOf(apiKey: string | undefined): string | null {
    if (!apiKey || apiKey.length > MAX_KEY_LENGTH) return null;
    return hashKey(apiKey);
  }

  /** The principal of the usable key with this hash (see {@link hashOf}), or null. Always asks Postgres. */
  async principalOf(keyHash: string): Promise<ApiKeyPrincipal | null> {
    return this.db.repos.apiKeys.findActiveByHash(keyHash);
  }
}
