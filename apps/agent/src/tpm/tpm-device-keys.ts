/**
 * The device's keys inside a TPM 2.0 (TPM mode, `register --tpm`): the device
 * key (ECC P-256, signs the CSR and every device assertion) and the transport
 * key (RSA 2048, decrypts the session key: RSA-OAEP-256 inside the TPM). Both
 * are `noda` keys with an empty authorization, so a PIN lockout of the user key
 * does not stop the device from proving itself. Registration gets a TPM
 * attestation of the device key in the WebAuthn `tpm` structure: the AIK
 * (a restricted signing key the device's provisioning left at a persistent
 * handle) certifies it over SHA-256 of the CSR, and the AIK's certificate chain
 * (a file an AIK CA issued, chaining to a TPM root the tenant configured) goes
 * in x5c.
 */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  type CertifyResult,
  csrDer,
  ecdsaCsr,
  ecdsaDerToJose,
  sha256Digest,
  type TpmKeyBlobs,
  Tpm2Tools,
} from '@latchkey/tpm';
import type { JwsSigner, SessionKeyDecrypter } from '../protocol/device-protocol';

/** The persistent handle where the agent looks for the AIK unless told otherwise (--aik-handle). */
export const DEFAULT_AIK_HANDLE = '0x81010002';

/** The AIK: its persistent handle and its certificate chain (DER, the AIK's certificate first). */
export interface TpmAik {
  handle: string;
  chain: Buffer[];
}

/** A TPM key attestation in the WebAuthn `tpm` structure (registration's and provisioning's). */
export interface TpmStatement {
  ver: '2.0';
  alg: number;
  x5c: Buffer[];
  certInfo: Buffer;
  pubArea: Buffer;
  sig: Buffer;
}

/** What the keystore keeps of the device's TPM keys (tpm-device-keys.json, 0600): wrapped blobs, base64url. */
export interface TpmDeviceRecord {
  tcti: string;
  aik: { handle: string; chain: string[] };
  deviceKey: { public: string; private: string };
  transportKey: { public: string; private: string };
}

export class TpmSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TpmSetupError';
  }
}

export function tpmStatement(certified: CertifyResult, pubArea: Buffer, aik: TpmAik): TpmStatement {
  return {
    ver: '2.0',
    alg: certified.alg,
    x5c: aik.chain,
    certInfo: certified.certInfo,
    pubArea,
    sig: certified.sig,
  };
}

/** The certificates of a PEM file (the AIK's first, then its issuers), DER. */
export function pemCertificates(pem: string): Buffer[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => Buffer.from(new X509Certificate(b).raw));
}

/** The AIK of --aik-handle with the chain of --aik-cert (a PEM file). */
export function aikFrom(certFile: string, handle = DEFAULT_AIK_HANDLE): TpmAik {
  if (!/^0x81[0-9a-f]{6}$/i.test(handle))
    throw new TpmSetupError(`--aik-handle ${handle} is not a persistent handle (0x81xxxxxx)`);
  let chain: Buffer[];
  try {
    chain = pemCertificates(readFileSync(certFile, 'utf8'));
  } catch (err) {
    throw new TpmSetupError(`--aik-cert ${certFile}: ${(err as Error).message}`);
  }
  if (!chain.length) throw new TpmSetupError(`--aik-cert ${certFile} holds no PEM certificate`);
  return { handle: handle.toLowerCase(), chain };
}

const blobsOf = (b: { public: string; private: string }): TpmKeyBlobs => ({
  public: Buffer.from(b.public, 'base64url'),
  private: Buffer.from(b.private, 'base64url'),
});
const storedBlobs = (b: TpmKeyBlobs) => ({
  public: b.public.toString('base64url'),
  private: b.private.toString('base64url'),
});

/**
 * Makes the device and transport keys in the TPM, the CSR signed by the device
 * key (subject CN=`name`), and the AIK's attestation of the device key bound to
 * the CSR (extraData = SHA-256 of its DER).
 */
export function createTpmDeviceKeys(
  tcti: string,
  aik: TpmAik,
  name: string,
): {
  record: TpmDeviceRecord;
  csrPem: string;
  transportPublicKey: KeyObject;
  attestation: TpmStatement;
} {
  return Tpm2Tools.session(tcti, (tpm) => {
    let aikSpki: Buffer;
    try {
      aikSpki = tpm.spki(aik.handle);
    } catch (err) {
      throw new TpmSetupError(`no AIK at ${aik.handle} in the TPM (${(err as Error).message})`);
    }
    const certified = new X509Certificate(aik.chain[0]!).publicKey.export({
      type: 'spki',
      format: 'der',
    });
    if (!certified.equals(aikSpki))
      throw new TpmSetupError(
        `the AIK certificate (--aik-cert) is not for the key at ${aik.handle} (--aik-handle)`,
      );
    const deviceKey = tpm.createKey('device', 'sign');
    const transportKey = tpm.createKey('transport', 'decrypt');
    const csrPem = ecdsaCsr(
      tpm.spki('device'),
      (tbs) => tpm.sign('device', tbs),
      name.replace(/[,+="\\<>;#]/g, '_'),
    );
    const attestation = tpmStatement(
      tpm.certify('device', aik.handle, sha256Digest(csrDer(csrPem))),
      tpm.pubArea('device'),
      aik,
    );
    return {
      record: {
        tcti,
        aik: { handle: aik.handle, chain: aik.chain.map((c) => c.toString('base64')) },
        deviceKey: storedBlobs(deviceKey),
        transportKey: storedBlobs(transportKey),
      },
      csrPem,
      transportPublicKey: createPublicKey({
        key: tpm.spki('transport'),
        format: 'der',
        type: 'spki',
      }),
      attestation,
    };
  });
}

/** The AIK of a TPM device record. */
export function aikOf(record: TpmDeviceRecord): TpmAik {
  return {
    handle: record.aik.handle,
    chain: record.aik.chain.map((c) => Buffer.from(c, 'base64')),
  };
}

/** Device assertions signed inside the TPM by the device key (ES256). */
export function tpmDeviceSigner(record: TpmDeviceRecord): JwsSigner {
  return {
    alg: 'ES256',
    sign: async (input) =>
      Tpm2Tools.session(record.tcti, (tpm) => {
        tpm.loadKey('device', blobsOf(record.deviceKey));
        return ecdsaDerToJose(tpm.sign('device', input));
      }),
  };
}

/** The session key's content-encryption key, unwrapped inside the TPM by the transport key. */
export function tpmTransportDecrypter(record: TpmDeviceRecord): SessionKeyDecrypter {
  return {
    alg: 'RSA-OAEP-256',
    decryptKey: async (encryptedKey) =>
      Tpm2Tools.session(record.tcti, (tpm) => {
        tpm.loadKey('transport', blobsOf(record.transportKey));
        return tpm.rsaDecrypt('transport', encryptedKey);
      }),
  };
}
