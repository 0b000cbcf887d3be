/**
 * The audit signing key (Ed25519): created once per deployment, stored with the
 * private half envelope-encrypted under the deployment's key-encryption key, and
 * published (every key ever used) at /.well-known/audit-keys.json.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { KeyEncryption } from '@latchkey/crypto';
import { type AuditConfig, AUDIT_CONFIG } from '../config';
import { Prisma, PrismaClient } from '../generated/prisma/client';

export interface AuditPublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

/** RFC 7638 thumbprint of an Ed25519 public JWK: its key id. */
export function thumbprint(x: string): string {
  return createHash('sha256')
    .update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x }))
    .digest('base64url');
}

@Injectable()
export class AuditKeyring implements OnModuleInit {
  private active?: { kid: string; key: KeyObject };
  private readonly publicKeys = new Map<string, KeyObject>();
  private readonly kek: KeyEncryption;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(AUDIT_CONFIG) config: AuditConfig,
  ) {
    this.kek = new KeyEncryption(config.KEY_ENCRYPTION_KEYS);
  }

  async onModuleInit(): Promise<void> {
    await this.load();
  }

  /** Loads the current key, creating it when the deployment has none (one instance wins). */
  private async load(): Promise<void> {
    const row = await this.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('audit:signing-key'))`;
      const current = await tx.auditSigningKey.findFirst({
        where: { retiredAt: null },
        orderBy: { createdAt: 'desc' },
      });
      if (current) return current;
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
      const kid = thumbprint(x);
      const jwk: AuditPublicJwk = { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' };
      const der = privateKey.export({ format: 'der', type: 'pkcs8' });
      return tx.auditSigningKey.create({
        data: {
          kid,
          algorithm: 'EdDSA',
          publicJwk: jwk as unknown as Prisma.InputJsonValue,
          privateKeyEnc: this.kek.encrypt(der, `audit.signing-key:${kid}`),
        },
      });
    });
    const der = this.kek.decrypt(row.privateKeyEnc, `audit.signing-key:${row.kid}`);
    this.active = {
      kid: row.kid,
      key: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }),
    };
  }

  get kid(): string {
    if (!this.active) throw new Error('audit signing key not loaded');
    return this.active.kid;
  }

  sign(payload: string): string {
    if (!this.active) throw new Error('audit signing key not loaded');
    return sign(null, Buffer.from(payload, 'utf8'), this.active.key).toString('base64url');
  }

  /** Every key ever used, newest first (old checkpoints stay verifiable). */
  async publicJwks(): Promise<AuditPublicJwk[]> {
    const rows = await this.db.auditSigningKey.findMany({ orderBy: { createdAt: 'desc' } });
    return rows.map((r) => r.publicJwk as unknown as AuditPublicJwk);
  }

  async verify(kid: string, payload: string, signature: string): Promise<boolean | 'UNKNOWN_KEY'> {
    let key = this.publicKeys.get(kid);
    if (!key) {
      const row = await this.db.auditSigningKey.findUnique({ where: { kid } });
      if (!row) return 'UNKNOWN_KEY';
      key = createPublicKey({
        key: row.publicJwk as unknown as JsonWebKey,
        format: 'jwk',
      });
      this.publicKeys.set(kid, key);
    }
    return verify(null, Buffer.from(payload, 'utf8'), key, Buffer.from(signature, 'base64url'));
  }
}
