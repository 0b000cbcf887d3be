/**
 * The user key inside a TPM 2.0 (tpm2-tools, libs/tpm): an ECC P-256 signing
 * key under the owner hierarchy's primary key, with the PIN as its
 * authorization value. The TPM checks the PIN and its dictionary-attack
 * protection counts the wrong ones and locks out; only the TPM-wrapped blobs
 * live in the keystore. With the device's AIK, the new key is certified
 * (TPM2_Certify over SHA-256 of provisioning's challenge) for provisioning's
 * TPM key attestation.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  ecdsaDerToJose,
  sha256Digest,
  TpmAuthFailError,
  type TpmKeyBlobs,
  TpmLockoutError,
  Tpm2Tools,
} from '@latchkey/tpm';
import { WrongPinError } from '../keystore/pin-sealed-key';
import { KeystoreError, type UserKeyRecord } from '../keystore/software-keystore';
import type { JwsSigner } from '../protocol/device-protocol';
import { type TpmAik, tpmStatement, type TpmStatement } from './tpm-device-keys';

export { TpmLockoutError, type TpmKeyBlobs };

/** The TPM's refusals as the keystore's errors (wrong PIN, locked PIN). */
function asKeystoreError(err: unknown): unknown {
  if (err instanceof WrongPinError || err instanceof TpmAuthFailError)
    return new KeystoreError(
      'WRONG_PIN',
      'wrong PIN (counted by the TPM: its dictionary-attack protection locks out after too many)',
    );
  if (err instanceof TpmLockoutError) return new KeystoreError('PIN_LOCKED', err.message);
  return err;
}

export class TpmUserKeys {
  /** @param tcti the TPM2TOOLS_TCTI of the TPM (e.g. "device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321"). */
  constructor(readonly tcti: string) {}

  /**
   * Creates a key whose authorization value is the PIN; with `attest`, the AIK
   * certifies it over SHA-256 of `attest.challenge` (the PIN authorizes the key's part).
   */
  create(
    pin: string,
    attest?: { aik: TpmAik; challenge: string },
  ): { blobs: TpmKeyBlobs; publicKey: KeyObject; attestation?: TpmStatement } {
    return Tpm2Tools.session(this.tcti, (tpm) => {
      const blobs = tpm.createKey('user', 'user-sign', pin);
      const publicKey = createPublicKey({ key: tpm.spki('user'), format: 'der', type: 'spki' });
      const attestation = attest
        ? tpmStatement(
            tpm.certify('user', attest.aik.handle, sha256Digest(attest.challenge), pin),
            tpm.pubArea('user'),
            attest.aik,
          )
        : undefined;
      return { blobs, publicKey, ...(attestation ? { attestation } : {}) };
    });
  }

  /** ES256 signature (JOSE r‖s) over `data`, authorized by the PIN. */
  sign(blobs: TpmKeyBlobs, pin: string, data: Buffer): Buffer {
    return Tpm2Tools.session(this.tcti, (tpm) => {
      tpm.loadKey('user', blobs);
      try {
        return ecdsaDerToJose(tpm.sign('user', data, pin));
      } catch (err) {
        if (err instanceof TpmAuthFailError) throw new WrongPinError();
        throw err;
      }
    });
  }
}

/** The JWS signer of a TPM-resident user key: each signature is authorized by the PIN inside the TPM. */
export function tpmUserKeySigner(record: Pick<UserKeyRecord, 'tpm'>, pin: string): JwsSigner {
  if (!record.tpm) throw new KeystoreError('NO_USER_KEY', 'the user key is not in a TPM');
  const tpm = new TpmUserKeys(record.tpm.tcti);
  const blobs = {
    public: Buffer.from(record.tpm.public, 'base64url'),
    private: Buffer.from(record.tpm.private, 'base64url'),
  };
  return {
    alg: 'ES256',
    sign: async (input) => {
      try {
        return tpm.sign(blobs, pin, input);
      } catch (err) {
        throw asKeystoreError(err);
      }
    },
  };
}
