import type { EntityManager } from 'typeorm';

/** A claimed or completed Idempotency-Key. */
export interface IdempotencyRecord {
  requestHash: string;
  state: 'pending' | 'done';
  status: number | null;
  keyId: string | null;
  response: Buffer | null;
  /** The webhook of a response that handed out a secret; kept when the response is emptied with the secret. */
  webhookId: string | null;
  createdAt: Date;
  expiresAt: Date;
}

type Row = {
  request_hash: string;
  state: 'pending' | 'done';
  status: number | null;
  key_id: string | null;
  response: Buffer | null;
  webhook_id: string | null;
  created_at: Date;
  expires_at: Date;
};

const toRecord = (r: Row): IdempotencyRecord => ({
  requestHash: r.request_hash,
  state: r.state,
  status: r.status,
  keyId: r.key_id,
  response: r.response,
  webhookId: r.webhook_id,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

/** A stored (encrypted) first response, as re-encryption pages through them. */
export interface SealedResponse {
  projectId: string;
  key: string;
  keyId: string;
  response: Buffer;
}

/** Idempotency keys per project: claim first, run, then store the (encrypted) response. */
export class IdempotencyKeysRepository {
  constructor(private readonly manager: EntityManager) {}

  /**
   * Claims `key` for a request, atomically: true when this caller may run the request. An expired row, or a
   * pending one older than `staleBefore` (its process died mid-request), is taken over.
   */
  async claim(input: {
    projectId: string;
    key: string;
    requestHash: string;
    now: Date;
    expiresAt: Date;
    staleBefore: Date;
  }): Promise<boolean> {
    const rows: unknown[] = await this.manager.query(
      `INSERT INTO idempotency_keys (project_id, key, request_hash, state, created_at, expires_at)
       VALUES ($1, $2, $3, 'pending', $4, $5)
       ON CONFLICT (project_id, key) DO UPDATE
         SET request_hash = EXCLUDED.request_hash, state = 'pending', status = NULL, key_id = NULL,
             response = NULL, secret_fingerprint = NULL, webhook_id = NULL, created_at = EXCLUDED.created_at,
             expires_at = EXCLUDED.expires_at
         WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
            OR (idempotency_keys.state = 'pending' AND idempotency_keys.created_at < $6
                AND idempotency_keys.request_hash = EXCLUDED.request_hash)
       RETURNING 1`,
      [input.projectId, input.key, input.requestHash, input.now, input.expiresAt, input.staleBefore],
    );
    return rows.length > 0;
  }

  async find(projectId: string, key: string): Promise<IdempotencyRecord | null> {
    const rows: Row[] = await this.manager.query(
      `SELECT request_hash, state, status, key_id, response, webhook_id, created_at, expires_at
         FROM idempotency_keys WHERE project_id = $1 AND key = $2`,
      [projectId, key],
    );
    return rows.length === 0 ? null : toRecord(rows[0]);
  }

  /**
   * Stores the first response of a claimed key, if the claim is still the caller's: pending, and claimed at
   * `claimedAt` (a claim left pending too long may have been taken over by a retry, with a later time). Returns
   * whether it was stored.
   */
  async complete(input: {
    projectId: string;
    key: string;
    claimedAt: Date;
    status: number;
    keyId: string;
    response: Buffer;
    /** The webhook secret the response hands out, if any: destroying it (its fingerprint) empties the response. */
    secret: { webhookId: string; fingerprint: string } | null;
  }): Promise<boolean> {
    // TypeORM answers an UPDATE with [rows, affected].
    const [, updated]: [unknown[], number] = await this.manager.query(
      `UPDATE idempotency_keys SET state = 'done', status = $4, key_id = $5, response = $6,
             secret_fingerprint = $7, webhook_id = $8
        WHERE project_id = $1 AND key = $2 AND state = 'pending' AND created_at = $3`,
      [
        input.projectId,
        input.key,
        input.claimedAt,
        input.status,
        input.keyId,
        input.response,
        input.secret?.fingerprint ?? null,
        input.secret?.webhookId ?? null,
      ],
    );
    return updated === 1;
  }

  /**
   * Gives a claimed key back (the request failed), so that a retry runs it again; only the caller's own claim
   * (claimed at `claimedAt`), never one a retry has taken over since.
   */
  async release(projectId: string, key: string, claimedAt: Date): Promise<void> {
    await this.manager.query(
      `DELETE FROM idempotency_keys WHERE project_id = $1 AND key = $2 AND state = 'pending' AND created_at = $3`,
      [projectId, key, claimedAt],
    );
  }

  /** A page of stored responses in (project, key) order, after `after` (exclusive), for re-encryption. */
  async pageSealedAfter(
    after: { projectId: string; key: string } | null,
    limit: number,
  ): Promise<SealedResponse[]> {
    const rows: { project_id: string; key: string; key_id: string; response: Buffer }[] =
      await this.manager.query(
        `SELECT project_id, key, key_id, response FROM idempotency_keys
          WHERE state = 'done' AND response IS NOT NULL
            AND ($1::uuid IS NULL OR (project_id, key) > ($1::uuid, $2::text))
          ORDER BY project_id, key LIMIT $3`,
        [after?.projectId ?? null, after?.key ?? null, limit],
      );
    return rows.map((r) => ({ projectId: r.project_id, key: r.key, keyId: r.key_id, response: r.response }));
  }

  /**
   * Replaces a stored response with its re-encryption, unless the row changed since it was read (expired and
   * claimed again meanwhile). Returns whether it was replaced.
   */
  async replaceSealedResponse(previous: SealedResponse, keyId: string, response: Buffer): Promise<boolean> {
    const [, updated]: [unknown[], number] = await this.manager.query(
      `UPDATE idempotency_keys SET key_id = $4, response = $5
        WHERE project_id = $1 AND key = $2 AND state = 'done' AND response = $3`,
      [previous.projectId, previous.key, previous.response, keyId, response],
    );
    return updated === 1;
  }

  /** Deletes up to `batch` expired rows; returns how many went. */
  async purgeExpired(now: Date, batch = 5000): Promise<number> {
    const res: [unknown[], number] = await this.manager.query(
      `DELETE FROM idempotency_keys WHERE ctid IN (
         SELECT ctid FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)`,
      [now, batch],
    );
    return res[1];
  }
}
