/** Reads and replaces tenant key policies; a tenant without one gets the defaults. */
import { Inject, Injectable } from '@nestjs/common';
import type { Principal } from '@latchkey/service-kit';
import { PrismaClient } from '../generated/prisma/client';
import type { KeyPolicy as KeyPolicyRow } from '../generated/prisma/client';
import {
  DEFAULT_KEY_POLICY,
  type EffectiveKeyPolicy,
  type KeyAlgorithm,
  type KeyPolicyRules,
} from './key-policy';

function fromRow(row: KeyPolicyRow): EffectiveKeyPolicy {
  return {
    tenantId: row.tenantId,
    requireTpm: row.requireTpm,
    allowedAlgorithms: row.allowedAlgorithms as KeyAlgorithm[],
    mfaFreshnessSeconds: row.mfaFreshnessSeconds,
    maxKeysPerUser: row.maxKeysPerUser,
    maxKeysPerDevice: row.maxKeysPerDevice,
    maxKeysPerUserDevice: row.maxKeysPerUserDevice,
    keyLifetimeSeconds: row.keyLifetimeSeconds,
    tpmRootCertificatesPem: row.tpmRootCertificatesPem,
    updatedAt: row.updatedAt,
  };
}

@Injectable()
export class KeyPolicyService {
  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}

  async effective(tenantId: string): Promise<EffectiveKeyPolicy> {
    const row = await this.db.keyPolicy.findUnique({ where: { tenantId } });
    return row
      ? fromRow(row)
      : {
          tenantId,
          ...DEFAULT_KEY_POLICY,
          allowedAlgorithms: [...DEFAULT_KEY_POLICY.allowedAlgorithms],
          tpmRootCertificatesPem: [],
        };
  }

  async replace(
    tenantId: string,
    rules: KeyPolicyRules,
    actor: Principal,
  ): Promise<EffectiveKeyPolicy> {
    const data = { ...rules, updatedBy: actor.subject };
    const row = await this.db.keyPolicy.upsert({
      where: { tenantId },
      create: { tenantId, ...data },
      update: data,
    });
    return fromRow(row);
  }
}
