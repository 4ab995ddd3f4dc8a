import { Inject, Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { APP_CONFIG, type AppConfig, type EncryptionKey } from '@app/config';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * The additional authenticated data of a stored idempotent response (which may hold a webhook secret): bound
 * to the project and the key, so a response copied onto another key's row fails to open.
 */
export function idempotentResponseAad(projectId: string, key: string): string {
  return `idempotency:${projectId}:${key}`;
}

/** A secret encrypted at rest. */
export interface SealedSecret {
  keyId: string;
  ciphertext: Buffer;
}

/**
 * AES-256-GCM under the configured key ring: the first key encrypts, every key decrypts. The webhook id is
 * bound as additional authenticated data, so a ciphertext copied onto another webhook's row fails to open.
 */
@Injectable()
export class SecretCipher {
  private readonly ring: EncryptionKey[];
  private readonly byId: Map<string, Buffer>;

  constructor(@Inject(APP_CONFIG) config: Pick<AppConfig, 'secrets'>) {
    this.ring = config.secrets.keyRing;
    this.byId = new Map(this.ring.map((k) => [k.id, k.key]));
  }

  /** Id of the key that encrypts new secrets. */
  get activeKeyId(): string {
    return this.ring[0].id;
  }

  seal(secret: string, webhookId: string): SealedSecret {
    const { id, key } = this.ring[0];
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(webhookId, 'utf8'));
    const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return { keyId: id, ciphertext: Buffer.concat([iv, body, cipher.getAuthTag()]) };
  }

  open(sealed: SealedSecret, webhookId: string): string {
    const key = this.byId.get(sealed.keyId);
    if (!key) throw new Error(`secret encrypted with key "${sealed.keyId}", which is not in the key ring`);
    const ct = sealed.ciphertext;
    // Shorter than an IV and a full tag, the slices below would read a truncated tag (GCM accepts 4 bytes): refused,
    // and the tag length is pinned as well, so no stored value is ever checked against fewer than 16 bytes.
    if (ct.length < IV_BYTES + TAG_BYTES) throw new Error('sealed secret is shorter than an IV and a tag');
    const decipher = createDecipheriv('aes-256-gcm', key, ct.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(webhookId, 'utf8'));
    decipher.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(ct.subarray(IV_BYTES, ct.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  }
}
