import { Injectable } from '@nestjs/common';
import { AuditRecorder } from '@app/audit';
import {
  Database,
  WebhookSecretEntity,
  type NewSecretRow,
  type Repositories,
  type SealedResponse,
  type SecretTrigger,
} from '@app/persistence';
import { newUuid } from '../ids';
import { SecretCipher, idempotentResponseAad, type SealedSecret } from './secret.cipher';
import { fingerprint, generateSecret } from './secret-material';

/** What {@link SecretsService.reencryptAll} rewrote. */
export interface ReencryptResult {
  secrets: number;
  idempotentResponses: number;
}

/** Why a webhook's signing secrets cannot be read: the secret's fingerprint and the decryption error. */
export interface UnreadableSecret {
  unreadable: string;
}

/** A freshly issued secret, in the clear: handed to the caller once and never stored like this. */
export interface IssuedSecret {
  secret: string;
  fingerprint: string;
}

/** Issuing, reading, expiring, re-encrypting and destroying signing secrets. */
@Injectable()
export class SecretsService {
  constructor(
    private readonly cipher: SecretCipher,
    private readonly audit: AuditRecorder,
  ) {}

  /** A new secret for `webhook`, in the clear and sealed for storage; claimed unless a schedule made it. */
  newSecret(webhookId: string, trigger: SecretTrigger): { issued: IssuedSecret; row: NewSecretRow } {
    const secret = generateSecret();
    const sealed = this.cipher.seal(secret, webhookId);
    const fp = fingerprint(secret);
    return {
      issued: { secret, fingerprint: fp },
      row: {
        id: newUuid(),
        trigger,
        claimed: trigger !== 'scheduled',
        keyId: sealed.keyId,
        ciphertext: sealed.ciphertext,
        fingerprint: fp,
      },
    };
  }

  /** The secrets that sign a delivery at `now`, newest first, decrypted. */
  async signingSecrets(tx: Repositories, webhookId: string, now: Date): Promise<string[]> {
    const rows = await tx.secrets.findValid(webhookId, now);
    return rows.map((r) => this.cipher.open(r, webhookId));
  }

  /**
   * {@link signingSecrets} of several webhooks at once; a webhook without secrets gets an empty list. A webhook
   * with a secret that cannot be decrypted (under a key the ring no longer has, or damaged) gets why instead of
   * its list, and only that webhook: the others of the batch are signed as usual.
   */
  async signingSecretsOf(
    tx: Repositories,
    webhookIds: string[],
    now: Date,
  ): Promise<Map<string, string[] | UnreadableSecret>> {
    const result = new Map<string, string[] | UnreadableSecret>(webhookIds.map((id) => [id, []]));
    for (const row of await tx.secrets.findValidOf(webhookIds, now)) {
      const secrets = result.get(row.webhookId);
      if (!Array.isArray(secrets)) continue;
      try {
        secrets.push(this.cipher.open(row, row.webhookId));
      } catch (e) {
        result.set(row.webhookId, { unreadable: `${row.fingerprint}: ${(e as Error).message}` });
      }
    }
    return result;
  }

  /** Destroys every secret of a webhook (on delete); returns how many. */
  async destroyAll(tx: Repositories, webhookId: string): Promise<number> {
    return tx.secrets.deleteAllOfWebhook(webhookId);
  }

  /**
   * Destroys up to `limit` previous secrets whose grace period has ended, recording
   * `webhook.secret.previous_expired` for each in the same transaction. Signing already ignores them from
   * the exact instant of expiry; this removes the material. Returns how many were destroyed.
   */
  async expireDue(db: Database, now: Date, limit: number): Promise<number> {
    return db.transaction(async (tx) => {
      const expired = await tx.secrets.deleteExpired(now, limit);
      if (expired.length === 0) return 0;
      const owners = await tx.webhooks.projectsOf(expired.map((s) => s.webhookId));
      for (const s of expired) {
        await this.audit.record(tx, {
          type: 'webhook.secret.previous_expired',
          projectId: owners.get(s.webhookId) ?? '00000000-0000-0000-0000-000000000000',
          webhookId: s.webhookId,
          actor: { type: 'system', id: 'housekeeping' },
          requestId: null,
          occurredAt: now,
          data: { fingerprint: s.fingerprint, expired_at: (s.expiresAt ?? now).toISOString() },
        });
      }
      return expired.length;
    });
  }

  /**
   * Re-encrypts everything stored under the key ring that is not under its first key, page by page, so an old
   * key can be dropped from SECRETS_ENCRYPTION_KEYS afterwards: the webhook secrets, and the stored first
   * responses of Idempotency-Keys (a create or rotate response holds a secret). Fails, naming the key, when
   * something is under a key the ring no longer has.
   */
  async reencryptAll(db: Database): Promise<ReencryptResult> {
    return {
      secrets: await this.reencryptSecrets(db),
      idempotentResponses: await this.reencryptResponses(db),
    };
  }

  private async reencryptSecrets(db: Database): Promise<number> {
    let after: string | null = null;
    let rewritten = 0;
    for (;;) {
      const page: WebhookSecretEntity[] = await db.transaction((tx) => tx.secrets.pageAfter(after, 500));
      if (page.length === 0) return rewritten;
      await db.transaction(async (tx) => {
        const stale = page.filter((row) => row.keyId !== this.cipher.activeKeyId);
        // The webhooks first, as every rotation takes them: rewriting their secrets with no such lock, in the
        // order of the secrets' ids, would deadlock with a rotation or a sweep that holds one of them.
        await tx.webhooks.lockForSecretChange([...new Set(stale.map((row) => row.webhookId))]);
        for (const row of stale) {
          const secret = this.openOrName(
            row,
            row.webhookId,
            `secret ${row.fingerprint} of webhook ${row.webhookId}`,
          );
          const sealed = this.cipher.seal(secret, row.webhookId);
          // A secret destroyed (or re-encrypted by another run) since the page was read is not counted.
          if (await tx.secrets.replaceCiphertext(row.id, row.keyId, sealed.keyId, sealed.ciphertext))
            rewritten++;
        }
      });
      after = page[page.length - 1].id;
    }
  }

  /**
   * What re-encryption rewrites, in the clear, or an error that names it (`what`): a damaged row (or one under a
   * key the ring lacks) stops re-encryption, and the operator has to find that one row to put it right.
   */
  private openOrName(sealed: SealedSecret, aad: string, what: string): string {
    try {
      return this.cipher.open(sealed, aad);
    } catch (e) {
      throw new Error(`${what} cannot be decrypted: ${(e as Error).message}`);
    }
  }

  private async reencryptResponses(db: Database): Promise<number> {
    let after: SealedResponse | null = null;
    let rewritten = 0;
    for (;;) {
      const page: SealedResponse[] = await db.repos.idempotencyKeys.pageSealedAfter(after, 500);
      if (page.length === 0) return rewritten;
      for (const row of page) {
        if (row.keyId === this.cipher.activeKeyId) continue;
        const aad = idempotentResponseAad(row.projectId, row.key);
        // A stored response only serves replays, and expires within 24 hours: the operator may wait for that, or
        // delete the row named.
        const response = this.openOrName(
          { keyId: row.keyId, ciphertext: row.response },
          aad,
          `the stored response to Idempotency-Key ${JSON.stringify(row.key)} of project ${row.projectId}`,
        );
        const sealed = this.cipher.seal(response, aad);
        // A row that changed meanwhile was claimed again, and its new response is sealed with the first key.
        if (await db.repos.idempotencyKeys.replaceSealedResponse(row, sealed.keyId, sealed.ciphertext))
          rewritten++;
      }
      after = page[page.length - 1];
    }
  }
}
