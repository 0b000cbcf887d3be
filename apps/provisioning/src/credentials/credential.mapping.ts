/** Credential row → its gRPC/JSON shape (latchkey.provisioning.v1.Credential). */
import { provisioningV1, toTimestamp } from '@latchkey/contracts';
import type { Credential } from '../generated/prisma/client';

const { CredentialStatus: S, AttestationLevel: L } = provisioningV1;

export function effectiveStatus(c: Credential, now = new Date()): provisioningV1.CredentialStatus {
  if (c.status === 'revoked') return S.CREDENTIAL_STATUS_REVOKED;
  if (c.status === 'suspended') return S.CREDENTIAL_STATUS_SUSPENDED;
  if (c.expiresAt && c.expiresAt <= now) return S.CREDENTIAL_STATUS_EXPIRED;
  return S.CREDENTIAL_STATUS_ACTIVE;
}

export function toProtoCredential(c: Credential): provisioningV1.Credential {
  return {
    credentialId: c.id,
    tenantId: c.tenantId,
    userId: c.userId,
    deviceId: c.deviceId,
    publicKeyJwk: JSON.stringify(c.publicKeyJwk),
    algorithm: c.algorithm,
    attestationLevel:
      c.attestationLevel === 'tpm' ? L.ATTESTATION_LEVEL_TPM : L.ATTESTATION_LEVEL_SOFTWARE,
    attestationIssuer: c.attestationIssuer ?? '',
    status: effectiveStatus(c),
    statusReason: c.statusReason ?? '',
    friendlyName: c.friendlyName ?? '',
    createTime: toTimestamp(c.createdAt),
    lastUseTime: c.lastUsedAt ? toTimestamp(c.lastUsedAt) : null,
    expireTime: c.expiresAt ? toTimestamp(c.expiresAt) : null,
    revokeTime: c.revokedAt ? toTimestamp(c.revokedAt) : null,
  };
}
