/**
 * The port through which provisioning checks a TPM key attestation (WebAuthn
 * `tpm` statement). The implementation is the platform's shared TPM verifier
 * in libs/crypto (issue #4), the one that also serves device keys.
 */
import type { KeyObject } from 'node:crypto';

export interface TpmStatement {
  ver: string;
  alg: number;
  x5c: Uint8Array[];
  sig: Uint8Array;
  certInfo: Uint8Array;
  pubArea: Uint8Array;
}

export interface KeyAttestationResult {
  /** Subject DN of the AIK certificate's issuer. */
  aikIssuer: string;
}

export interface KeyAttestationVerifier {
  /**
   * Resolves when `statement` certifies `key` with extraData = SHA-256(challenge)
   * under the tenant's TPM trust anchors; rejects (any error) otherwise.
   */
  verify(
    statement: TpmStatement,
    expected: {
      tenantId: string;
      key: KeyObject;
      challenge: string;
      /** The tenant's TPM roots (key policy). */
      trustAnchorsPem: string[];
    },
  ): Promise<KeyAttestationResult>;
}

export const KEY_ATTESTATION_VERIFIER = Symbol('KEY_ATTESTATION_VERIFIER');
