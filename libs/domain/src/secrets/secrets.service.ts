import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { AuditRecorder, type Actor } from '@app/audit';
import {
  Database,
  WebhookSecretEntity,
  type CurrentSecretState,
  type NewSecretRow,
  type Repositories,
  type RetireAction,
  type SecretTrigger,
  type WebhookEntity,
} from '@app/persistence';
import { newUuid } from '../ids';
import { SecretCipher } from './secret-cipher';
import { fingerprint, generateSecret } from './secret-material';

const HOUR_MS = 3_600_000;

/** A freshly issued secret, in the clear: handed to the caller once and never stored like this. */
export interface IssuedSecret {
  secret: string;
  fingerprint: string;
}

/** Options of one rotation. */
export interface RotateOptions {
  trigger: Exclude<SecretTrigger, 'created'>;
  /** How long the outgoing secret keeps signing; defaults to SECRET_GRACE_PERIOD_HOURS. */
  gracePeriodHours?: number;
  actor: Actor;
  requestId: string | null;
  now: Date;
}

/** Issuing, rotating and destroying signing secrets. Every method runs inside the caller's transaction. */
@Injectable()
export class SecretsService {
  constructor(
    private readonly cipher: SecretCipher,
    private readonly audit: AuditRecorder,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
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

  /**
   * Replaces the current secret of a webhook the caller has row-locked (with its current secret's state).
   * The outgoing secret keeps signing for the grace period; an unclaimed one (made by a scheduled rotation
   * nobody fetched) is superseded and destroyed, since no receiver can hold it. Restarts the rotation clock
   * and records `webhook.secret.rotated`, all in one statement.
   */
  async rotate(
    tx: Repositories,
    webhook: WebhookEntity,
    current: CurrentSecretState | null,
    opts: RotateOptions,
  ): Promise<IssuedSecret> {
    const graceHours = opts.gracePeriodHours ?? this.config.secrets.gracePeriodHours;
    let retire: RetireAction = { kind: 'none' };
    let previousFingerprint: string | null = null;
    let previousExpiresAt: Date | null = null;
    let superseded: string | undefined;
    if (current && !current.claimed) {
      superseded = current.fingerprint;
      retire = { kind: 'destroy', id: current.id };
    } else if (current) {
      previousFingerprint = current.fingerprint;
      previousExpiresAt = new Date(opts.now.getTime() + graceHours * HOUR_MS);
      retire =
        graceHours === 0
          ? { kind: 'destroy', id: current.id }
          : { kind: 'demote', id: current.id, expiresAt: previousExpiresAt };
    }
    const { issued, row } = this.newSecret(webhook.id, opts.trigger);
    const audit = this.audit.prepare(tx, {
      type: 'webhook.secret.rotated',
      projectId: webhook.projectId,
      webhookId: webhook.id,
      actor: opts.actor,
      requestId: opts.requestId,
      occurredAt: opts.now,
      data: {
        trigger: opts.trigger,
        fingerprint: issued.fingerprint,
        previous_fingerprint: previousFingerprint,
        previous_expires_at: previousExpiresAt?.toISOString() ?? null,
        ...(superseded ? { superseded_unclaimed_fingerprint: superseded } : {}),
      },
    });
    await tx.secrets.rotateCurrent(webhook.id, retire, row, audit, opts.now);
    webhook.updatedAt = opts.now;
    return issued;
  }

  /** The secrets that sign a delivery at `now`, newest first, decrypted. */
  async signingSecrets(tx: Repositories, webhookId: string, now: Date): Promise<string[]> {
    const rows = await tx.secrets.findValid(webhookId, now);
    return rows.map((r) => this.cipher.open(r, webhookId));
  }

  /** {@link signingSecrets} of several webhooks at once; a webhook without secrets gets an empty list. */
  async signingSecretsOf(tx: Repositories, webhookIds: string[], now: Date): Promise<Map<string, string[]>> {
    const result = new Map<string, string[]>(webhookIds.map((id) => [id, []]));
    for (const row of await tx.secrets.findValidOf(webhookIds, now)) {
      result.get(row.webhookId)?.push(this.cipher.open(row, row.webhookId));
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
   * Re-encrypts every stored secret under the first key of the ring, page by page, so an old key can be
   * dropped from SECRETS_ENCRYPTION_KEYS afterwards. Returns how many were rewritten.
   */
  async reencryptAll(db: Database): Promise<number> {
    let after: string | null = null;
    let rewritten = 0;
    for (;;) {
      const page: WebhookSecretEntity[] = await db.transaction((tx) => tx.secrets.pageAfter(after, 500));
      if (page.length === 0) return rewritten;
      await db.transaction(async (tx) => {
        for (const row of page) {
          if (row.keyId === this.cipher.activeKeyId) continue;
          const sealed = this.cipher.seal(this.cipher.open(row, row.webhookId), row.webhookId);
          await tx.secrets.replaceCiphertext(row.id, sealed.keyId, sealed.ciphertext);
          rewritten++;
        }
      });
      after = page[page.length - 1].id;
    }
  }
}
