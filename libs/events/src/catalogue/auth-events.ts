/**
 * Events of the identity provider (auth), topic latchkey.auth.v1. None carries
 * a password, code, secret or token. Platform-level events (signing keys) use
 * the platform tenant (nil UUID).
 */
import { z } from 'zod';
import type { EventDefinition } from './catalogue';
import { Topics } from './topics';

const source = '/latchkey/auth';
const tenantId = z.string().uuid();
const userId = z.string().uuid();
const actorId = z.string().min(1).max(128).optional();
const username = z.string().min(1).max(256);
const sourceIp = z.string().max(64).optional();

/** The platform tenant: holds the operators; key of platform-level events. */
export const PLATFORM_TENANT_ID = '00000000-0000-0000-0000-000000000000';

/** Why a sign-in failed (fixed vocabulary, for SOC rules). */
export const SIGN_IN_FAILURE_REASONS = [
  'bad_credentials',
  'unknown_user',
  'bad_otp',
  'otp_reused',
  'user_locked',
  'user_disabled',
  'rate_limited',
  'mfa_ticket_invalid',
  // key sign-in and refresh (issue 6)
  'nonce_unknown_or_used',
  'bad_device_signature',
  'bad_user_signature',
  'credential_not_active',
  'credential_device_mismatch',
  'device_not_active',
  'assertion_expired',
  'audience_mismatch',
  'malformed_request',
  'refresh_token_invalid',
  'refresh_token_reused',
  'bad_session_proof',
  'session_revoked',
] as const;

/** How strongly the signing key's storage was proven (provisioning's levels). */
export const KEY_ATTESTATION_LEVELS = ['none', 'software', 'tpm'] as const;

function auth<S extends z.ZodTypeAny>(def: Omit<EventDefinition<S>, 'topic' | 'source'>) {
  return { ...def, topic: Topics.auth, source } as EventDefinition<S>;
}

export const TenantCreated = auth({
  type: 'dev.latchkey.auth.tenant.created.v1',
  schema: z
    .object({
      tenantId,
      name: z.string().min(1).max(64),
      displayName: z.string().min(1).max(256),
      actorId,
    })
    .strict(),
  subject: (d) => `tenants/${d.tenantId}`,
});

export const UserCreated = auth({
  type: 'dev.latchkey.auth.user.created.v1',
  schema: z
    .object({
      tenantId,
      userId,
      username,
      roles: z.array(z.enum(['user', 'admin', 'operator'])),
      /** admin (CreateUser), import (ImportUsers) or seed. */
      origin: z.enum(['admin', 'import', 'seed']),
      actorId,
    })
    .strict(),
  subject: (d) => `users/${d.userId}`,
});

const userChange = z.object({ tenantId, userId, actorId }).strict();

export const UserDisabled = auth({
  type: 'dev.latchkey.auth.user.disabled.v1',
  schema: userChange,
  subject: (d) => `users/${d.userId}`,
});

export const UserEnabled = auth({
  type: 'dev.latchkey.auth.user.enabled.v1',
  schema: userChange,
  subject: (d) => `users/${d.userId}`,
});

export const UserDeleted = auth({
  type: 'dev.latchkey.auth.user.deleted.v1',
  schema: userChange,
  subject: (d) => `users/${d.userId}`,
});

export const UserPasswordChanged = auth({
  type: 'dev.latchkey.auth.user.password_changed.v1',
  schema: z
    .object({ tenantId, userId, actorId, origin: z.enum(['admin_reset', 'rehash']) })
    .strict(),
  subject: (d) => `users/${d.userId}`,
});

export const MfaEnrolled = auth({
  type: 'dev.latchkey.auth.mfa.enrolled.v1',
  schema: z.object({ tenantId, userId, method: z.literal('totp') }).strict(),
  subject: (d) => `users/${d.userId}`,
});

export const SignInSucceeded = auth({
  type: 'dev.latchkey.auth.sign_in.succeeded.v1',
  schema: z
    .object({
      tenantId,
      userId,
      /** `pwd+otp`: primary sign-in; `key`: key-based sign-in with a device-bound user key. */
      method: z.enum(['pwd+otp', 'key']),
      amr: z.array(z.string().max(16)).max(8),
      tokenId: z.string().max(64),
      /** Key sign-in: the device, the user key, how its storage was proven, the new session. */
      deviceId: z.string().uuid().optional(),
      credentialId: z.string().min(1).max(128).optional(),
      attestationLevel: z.enum(KEY_ATTESTATION_LEVELS).optional(),
      sessionId: z.string().uuid().optional(),
      sourceIp,
    })
    .strict(),
  subject: (d) => `users/${d.userId}`,
});

export const SignInFailed = auth({
  type: 'dev.latchkey.auth.sign_in.failed.v1',
  schema: z
    .object({
      tenantId,
      /** Absent when no such user exists (the attempted name is kept for the SOC). */
      userId: userId.optional(),
      /** Primary sign-in: the attempted name. Absent for key sign-in and refresh. */
      username: username.optional(),
      /** `key`: SignInWithKey; `refresh`: RefreshWithPrt. */
      stage: z.enum(['password', 'otp', 'key', 'refresh']),
      reason: z.enum(SIGN_IN_FAILURE_REASONS),
      /** Key sign-in / refresh: what the request claimed, when it could be read. */
      deviceId: z.string().uuid().optional(),
      credentialId: z.string().min(1).max(128).optional(),
      sessionId: z.string().uuid().optional(),
      sourceIp,
    })
    .strict(),
  subject: (d) =>
    d.userId
      ? `users/${d.userId}`
      : d.username
        ? `usernames/${d.username}`
        : d.deviceId
          ? `devices/${d.deviceId}`
          : 'sign-in',
});

export const UserLocked = auth({
  type: 'dev.latchkey.auth.user.locked.v1',
  schema: z
    .object({
      tenantId,
      userId: userId.optional(),
      username,
      failures: z.number().int().positive(),
      lockedUntil: z.string().datetime(),
      sourceIp,
    })
    .strict(),
  subject: (d) => (d.userId ? `users/${d.userId}` : `usernames/${d.username}`),
});

export const SigningKeyRotated = auth({
  type: 'dev.latchkey.auth.signing_key.rotated.v1',
  schema: z
    .object({
      tenantId,
      /** The key that signs from now on. */
      kid: z.string().min(1).max(64),
      previousKid: z.string().min(1).max(64).optional(),
      /** Published ahead of use, next in line. */
      nextKid: z.string().min(1).max(64),
      /** When the previous key leaves the JWKS. */
      previousRetireAt: z.string().datetime().optional(),
      trigger: z.enum(['initial', 'schedule', 'operator']),
      actorId,
    })
    .strict(),
  subject: (d) => `signing-keys/${d.kid}`,
});

export const TokenRefreshed = auth({
  type: 'dev.latchkey.auth.token.refreshed.v1',
  schema: z
    .object({
      tenantId,
      userId,
      deviceId: z.string().uuid(),
      credentialId: z.string().min(1).max(128),
      sessionId: z.string().uuid(),
      /** jti of the new access token. */
      tokenId: z.string().max(64),
      sourceIp,
    })
    .strict(),
  subject: (d) => `sessions/${d.sessionId}`,
});

export const SessionRevoked = auth({
  type: 'dev.latchkey.auth.session.revoked.v1',
  schema: z
    .object({
      tenantId,
      /** What was revoked: every session of a user, of a device, or one session. */
      scope: z.enum(['user', 'device', 'session']),
      userId: userId.optional(),
      deviceId: z.string().uuid().optional(),
      sessionId: z.string().uuid().optional(),
      revokedCount: z.number().int().nonnegative(),
      /** `admin`: RevokeSessions; `refresh_token_reuse`: a rotated-out PRT was presented again. */
      trigger: z.enum(['admin', 'refresh_token_reuse']),
      reason: z.string().min(1).max(256),
      actorId,
    })
    .strict(),
  subject: (d) =>
    d.scope === 'user'
      ? `users/${d.userId}`
      : d.scope === 'device'
        ? `devices/${d.deviceId}`
        : `sessions/${d.sessionId}`,
});

/** Every auth event, for the catalogue. */
export const AUTH_EVENTS: readonly EventDefinition[] = [
  TenantCreated,
  UserCreated,
  UserDisabled,
  UserEnabled,
  UserDeleted,
  UserPasswordChanged,
  MfaEnrolled,
  SignInSucceeded,
  SignInFailed,
  UserLocked,
  SigningKeyRotated,
  TokenRefreshed,
  SessionRevoked,
] as unknown as EventDefinition[];
