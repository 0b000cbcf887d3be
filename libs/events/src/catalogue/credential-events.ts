/**
 * Events of the provisioning service (user keys bound to devices), topic
 * latchkey.credential.v1. None carries key material beyond the credential id
 * (the SHA-256 thumbprint of the public key).
 */
import { z } from 'zod';
import type { EventDefinition } from './catalogue';
import { Topics } from './topics';

const source = '/latchkey/provisioning';
const tenantId = z.string().uuid();
const userId = z.string().min(1).max(128);
const deviceId = z.string().uuid();
/** base64url SHA-256 of the SPKI. */
const credentialId = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
const actorId = z.string().min(1).max(128).optional();
const algorithm = z.enum(['RS256', 'ES256']);
const attestationLevel = z.enum(['software', 'tpm']);

/** Why a provisioning attempt was refused (fixed vocabulary, for SOC rules). */
export const PROVISIONING_FAILURE_REASONS = [
  'mfa_stale',
  'mfa_missing',
  'device_inactive',
  'device_tenant_mismatch',
  'policy_tpm_required',
  'algorithm_not_allowed',
  'key_limit',
  'bad_proof',
  'bad_attestation',
  'challenge_unknown_or_used',
  // Beyond the list: a device assertion that fails, and keys refused before any policy.
  'bad_device_assertion',
  'malformed_key',
  'weak_key',
] as const;
export type ProvisioningFailureReason = (typeof PROVISIONING_FAILURE_REASONS)[number];

/** Why a credential was suspended or revoked. */
export const CREDENTIAL_CHANGE_CAUSES = [
  'device_disabled',
  'device_enabled',
  'device_deleted',
  'user_disabled',
  'user_enabled',
  'user_deleted',
  'replaced',
  'admin',
  'user',
] as const;

function credential<S extends z.ZodTypeAny>(def: Omit<EventDefinition<S>, 'topic' | 'source'>) {
  return { ...def, topic: Topics.credential, source } as EventDefinition<S>;
}

const credentialRef = { tenantId, userId, deviceId, credentialId };

/** A user key was registered on a device (WHfB "key registered"). */
export const CredentialProvisioned = credential({
  type: 'dev.latchkey.credential.provisioned.v1',
  schema: z
    .object({
      ...credentialRef,
      algorithm,
      attestationLevel,
      /** Issuer of the AIK certificate, for TPM-attested keys. */
      attestationIssuer: z.string().max(1024).optional(),
      /** Keys of the same user + device that this one replaced (revoked with cause `replaced`). */
      replacedCredentialIds: z.array(credentialId).max(100),
      expiresAt: z.string().datetime().optional(),
    })
    .strict(),
  subject: (d) => `credentials/${d.credentialId}`,
});

export const CredentialProvisioningFailed = credential({
  type: 'dev.latchkey.credential.provisioning_failed.v1',
  schema: z
    .object({
      tenantId,
      userId,
      deviceId: z.string().max(128).optional(),
      stage: z.enum(['begin', 'complete']),
      reason: z.enum(PROVISIONING_FAILURE_REASONS),
      algorithm: z.string().max(16).optional(),
      detail: z.string().max(256).optional(),
    })
    .strict(),
  subject: (d) => `users/${d.userId}`,
});

const change = z
  .object({
    ...credentialRef,
    cause: z.enum(CREDENTIAL_CHANGE_CAUSES),
    /** Free text given by the actor (RevokeCredential). */
    reason: z.string().max(256).optional(),
    actorId,
    /** ce_id of the event that caused the change, when an event did. */
    causationId: z.string().uuid().optional(),
  })
  .strict();

export const CredentialRevoked = credential({
  type: 'dev.latchkey.credential.revoked.v1',
  schema: change,
  subject: (d) => `credentials/${d.credentialId}`,
});

export const CredentialSuspended = credential({
  type: 'dev.latchkey.credential.suspended.v1',
  schema: change,
  subject: (d) => `credentials/${d.credentialId}`,
});

export const CredentialReactivated = credential({
  type: 'dev.latchkey.credential.reactivated.v1',
  schema: change,
  subject: (d) => `credentials/${d.credentialId}`,
});

export const CredentialDeleted = credential({
  type: 'dev.latchkey.credential.deleted.v1',
  schema: z.object({ ...credentialRef, actorId }).strict(),
  subject: (d) => `credentials/${d.credentialId}`,
});

/** Every credential event, for the catalogue. */
export const CREDENTIAL_EVENTS: readonly EventDefinition[] = [
  CredentialProvisioned,
  CredentialProvisioningFailed,
  CredentialRevoked,
  CredentialSuspended,
  CredentialReactivated,
  CredentialDeleted,
] as unknown as EventDefinition[];
