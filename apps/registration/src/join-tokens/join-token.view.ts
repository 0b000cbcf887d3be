/** The administrator's view of a join token (never its secret or hash). */
import { type registrationV1, toTimestamp } from '@latchkey/contracts';
import type { JoinToken } from '../generated/prisma/client';

export function toProtoJoinToken(t: JoinToken): registrationV1.JoinToken {
  return {
    joinTokenId: t.id,
    tenantId: t.tenantId,
    hint: t.hint,
    description: t.description,
    maxUses: t.maxUses,
    useCount: t.useCount,
    deviceNamePrefix: t.deviceNamePrefix ?? '',
    expireTime: toTimestamp(t.expiresAt),
    revokeTime: t.revokedAt ? toTimestamp(t.revokedAt) : undefined,
    createTime: toTimestamp(t.createdAt),
    createdBy: t.createdBy,
  };
}
