/**
 * TPM key attestations checked with the platform's shared TPM verifier
 * (libs/crypto, the one that serves device keys): certInfo.extraData must be
 * SHA-256 of the provisioning challenge, pubArea the key being provisioned,
 * the AIK chain must lead to one of the tenant's TPM roots (key policy).
 */
import { createHash } from 'node:crypto';
import { verifyTpmAttestation } from '@latchkey/crypto';
import type { KeyAttestationResult, KeyAttestationVerifier, TpmStatement } from './key-attestation';
import type { KeyObject } from 'node:crypto';

export class TpmKeyAttestationVerifier implements KeyAttestationVerifier {
  async verify(
    statement: TpmStatement,
    expected: { tenantId: string; key: KeyObject; challenge: string; trustAnchorsPem: string[] },
  ): Promise<KeyAttestationResult> {
    const { aikCertificate } = await verifyTpmAttestation(statement, {
      trustAnchorsPem: expected.trustAnchorsPem,
      expectedExtraData: createHash('sha256').update(expected.challenge, 'utf8').digest(),
      expectedSpki: expected.key.export({ type: 'spki', format: 'der' }),
    });
    return { aikIssuer: aikCertificate.issuer };
  }
}
