/**
 * Envelope encryption of secrets at rest (private keys, TOTP secrets) with the
 * deployment's key-encryption keys (KEKs): AES-256-GCM, the KEK id stored beside
 * the ciphertext, so keys can rotate: new writes use the current KEK, every
 * configured KEK still decrypts what it wrote.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { z } from 'zod';

const FORMAT = 'kek1';
const KID = /^[A-Za-z0-9_-]{1,32}$/;

export class KeyEncryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyEncryptionError';
  }
}

/**
 * Parses `KEY_ENCRYPTION_KEYS`: a comma-separated list of `<kid>:<base64 of 32 bytes>`.
 * The first entry is the current key (used for new writes); the others only decrypt.
 */
export function parseKeyEncryptionKeys(text: string): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  for (const entry of text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const i = entry.indexOf(':');
    const kid = entry.slice(0, i);
    if (i < 1 || !KID.test(kid)) throw new KeyEncryptionError('each key must be "<kid>:<base64>"');
    const key = Buffer.from(entry.slice(i + 1), 'base64');
    if (key.length !== 32) throw new KeyEncryptionError(`key ${kid} must be 32 bytes (base64)`);
    if (keys.has(kid)) throw new KeyEncryptionError(`key id ${kid} appears twice`);
    keys.set(kid, key);
  }
  if (!keys.size) throw new KeyEncryptionError('at least one key is required');
  return keys;
}

/** Config shape for services that encrypt secrets at rest (validated at boot). */
export const keyEncryptionConfigShape = {
  KEY_ENCRYPTION_KEYS: z.string().superRefine((v, ctx) => {
    try {
      parseKeyEncryptionKeys(v);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
    }
  }),
} as const;

export class KeyEncryption {
  private readonly keys: Map<string, Buffer>;
  readonly currentKeyId: string;

  constructor(keys: Map<string, Buffer> | string) {
    this.keys = typeof keys === 'string' ? parseKeyEncryptionKeys(keys) : keys;
    this.currentKeyId = [...this.keys.keys()][0]!;
  }

  /**
   * Encrypts with the current KEK. `context` (e.g. "auth.signing-key:<kid>") is
   * bound as associated data: a ciphertext moved to another row does not decrypt.
   */
  encrypt(plaintext: Buffer | string, context: string): string {
    const key = this.keys.get(this.currentKeyId)!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(`${FORMAT}.${this.currentKeyId}.${context}`));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [FORMAT, this.currentKeyId, iv, ct, tag]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  decrypt(envelope: string, context: string): Buffer {
    const parts = envelope.split('.');
    if (parts.length !== 5 || parts[0] !== FORMAT)
      throw new KeyEncryptionError('not a KEK envelope');
    const [, kid, iv, ct, tag] = parts as [string, string, string, string, string];
    const key = this.keys.get(kid);
    if (!key) throw new KeyEncryptionError(`key-encryption key ${kid} is not configured`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(`${FORMAT}.${kid}.${context}`));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
    } catch {
      throw new KeyEncryptionError('ciphertext does not authenticate (wrong key or context)');
    }
  }

  /** Key id an envelope was written with (to find rows that need re-encryption). */
  static keyIdOf(envelope: string): string | undefined {
    const parts = envelope.split('.');
    return parts.length === 5 && parts[0] === FORMAT ? parts[1] : undefined;
  }

  /** A fresh random KEK in the `<kid>:<base64>` form (local development and tests). */
  static generateKeySpec(kid = `k${Date.now().toString(36)}`): string {
    return `${kid}:${randomBytes(32).toString('base64')}`;
  }
}
