/** Wire shapes of tenants and users (gRPC and HTTP JSON share them). Never a secret. */
import { toTimestamp } from '@latchkey/contracts';
import * as adminV1 from '@latchkey/contracts/gen/latchkey/auth/v1/admin';
import type { Tenant } from '../generated/prisma/client';
import type { UserWithFactor } from '../directory/directory.service';

export function toProtoTenant(t: Tenant): adminV1.Tenant {
  return {
    tenantId: t.id,
    name: t.name,
    displayName: t.displayName,
    lockoutPolicy: {
      threshold: t.lockoutThreshold,
      windowSeconds: t.lockoutWindowSeconds,
      durationSeconds: t.lockoutDurationSeconds,
    },
    createTime: toTimestamp(t.createdAt),
  };
}

export function toProtoUser(u: UserWithFactor): adminV1.User {
  return {
    userId: u.id,
    tenantId: u.tenantId,
    username: u.username,
    displayName: u.displayName,
    email: u.email ?? '',
    roles: u.roles,
    state:
      u.status === 'active'
        ? adminV1.UserState.USER_STATE_ACTIVE
        : adminV1.UserState.USER_STATE_DISABLED,
    hasPassword: u.passwordHash !== null,
    totpEnrolled: u.totp?.status === 'active',
    createTime: toTimestamp(u.createdAt),
  };
}
