/** Key policy ⇄ its gRPC/JSON shape (latchkey.provisioning.v1.KeyPolicy). */
import { provisioningV1, toTimestamp } from '@latchkey/contracts';
import type { EffectiveKeyPolicy } from './key-policy';

export function toProtoKeyPolicy(p: EffectiveKeyPolicy): provisioningV1.KeyPolicy {
  return {
    tenantId: p.tenantId,
    requireTpm: p.requireTpm,
    allowedAlgorithms: [...p.allowedAlgorithms],
    mfaFreshnessSeconds: p.mfaFreshnessSeconds,
    maxKeysPerUser: p.maxKeysPerUser,
    maxKeysPerDevice: p.maxKeysPerDevice,
    maxKeysPerUserDevice: p.maxKeysPerUserDevice,
    keyLifetimeSeconds: p.keyLifetimeSeconds,
    updateTime: p.updatedAt ? toTimestamp(p.updatedAt) : null,
    tpmRootCertificatesPem: [...p.tpmRootCertificatesPem],
  };
}
