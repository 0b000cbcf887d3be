/** Refusal reasons of provisioning: the event vocabulary and the error each one becomes. */
import type { ProvisioningFailureReason } from '@latchkey/events';
import { DomainError, type ErrorKind } from '@latchkey/service-kit';

const ERRORS: Record<ProvisioningFailureReason, { kind: ErrorKind; message: string }> = {
  mfa_missing: {
    kind: 'UNAUTHENTICATED',
    message: 'provisioning a key needs a sign-in with a second factor',
  },
  mfa_stale: {
    kind: 'UNAUTHENTICATED',
    message: 'the second factor is too old for provisioning; sign in again',
  },
  device_inactive: { kind: 'FAILED_PRECONDITION', message: 'the device is not active' },
  device_tenant_mismatch: {
    kind: 'PERMISSION_DENIED',
    message: 'the device does not belong to your tenant',
  },
  bad_device_assertion: { kind: 'UNAUTHENTICATED', message: 'the device assertion is not valid' },
  policy_tpm_required: {
    kind: 'FAILED_PRECONDITION',
    message: 'the tenant policy requires a TPM-attested key',
  },
  algorithm_not_allowed: {
    kind: 'FAILED_PRECONDITION',
    message: 'the tenant policy does not allow this algorithm',
  },
  key_limit: {
    kind: 'FAILED_PRECONDITION',
    message: 'the key limit of the tenant policy is reached',
  },
  bad_proof: {
    kind: 'INVALID_ARGUMENT',
    message: 'the proof of possession is not a valid signature over the challenge by this key',
  },
  bad_attestation: { kind: 'INVALID_ARGUMENT', message: 'the key attestation is not valid' },
  challenge_unknown_or_used: {
    kind: 'FAILED_PRECONDITION',
    message: 'the challenge is unknown, expired or already used; begin again',
  },
  malformed_key: { kind: 'INVALID_ARGUMENT', message: 'the public key is malformed' },
  weak_key: { kind: 'INVALID_ARGUMENT', message: 'the public key is too weak' },
};

/** The DomainError of a refusal; its reason is the vocabulary word in UPPER_SNAKE. */
export function refusalError(reason: ProvisioningFailureReason, detail?: string): DomainError {
  const e = ERRORS[reason];
  return new DomainError(
    e.kind,
    reason.toUpperCase(),
    detail ? `${e.message}: ${detail}` : e.message,
  );
}
