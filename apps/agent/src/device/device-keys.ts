/**
 * The device's keys: the device key (EC P-256, signs the CSR and device
 * assertions) and the transport key (RSA 2048, receives session keys), in
 * software or (TPM mode, --tpm) inside the TPM with an attestation of the
 * device key for registration.
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  webcrypto,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { SoftwareKeystore } from '../keystore/software-keystore';
import { UsageError } from '../server/endpoints';
import { aikFrom, createTpmDeviceKeys, TpmSetupError } from '../tpm/tpm-device-keys';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_SIGN = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface SoftwareDeviceKeys {
  deviceKey: KeyObject;
  transportKey: KeyObject;
}

export function newSoftwareDeviceKeys(): SoftwareDeviceKeys {
  return {
    deviceKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    transportKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  };
}

export function publicPem(key: KeyObject): string {
  const publicKey = key.type === 'public' ? key : createPublicKey(key);
  return publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

/** A PKCS#10 CSR signed by the device key (its subject is ignored by registration). */
export async function deviceCsr(deviceKey: KeyObject, name: string): Promise<string> {
  const pkcs8 = deviceKey.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(deviceKey).export({ type: 'spki', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, EC_SIGN, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spki, EC_SIGN, true, ['verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name.replace(/[,+="\\<>;#]/g, '_')}`,
    keys: { privateKey, publicKey } as unknown as Parameters<
      typeof x509.Pkcs10CertificateRequestGenerator.create
    >[0]['keys'],
    signingAlgorithm: EC_SIGN,
  });
  return csr.toString('pem');
}

/** base64url SHA-256 of a public key's SPKI DER (registration's thumbprints, provisioning's credential ids). */
export function spkiThumbprint(key: KeyObject): string {
  const publicKey = key.type === 'public' ? key : createPublicKey(key);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64url');
}

/** The TCTI of the TPM for --tpm: --tcti, else $TPM2TOOLS_TCTI, else the kernel's resource manager. */
export function tctiFrom(flags: Record<string, unknown>): string {
  return (flags.tcti as string | undefined) ?? process.env.TPM2TOOLS_TCTI ?? 'device:/dev/tpmrm0';
}

/** New device keys for `register`: the request fields that present them, and how to keep them. */
export interface NewDeviceKeys {
  storage: 'software' | 'tpm';
  request: {
    csrPem: string;
    transportPublicKey: string;
    softwareKeyStorage?: boolean;
    tpmAttestation?: object;
  };
  save(keystore: SoftwareKeystore): void;
}

/**
 * Software keys, or with --tpm keys made in the TPM (--tcti) with the AIK at
 * --aik-handle certifying the device key; --aik-cert is the AIK's certificate
 * chain (PEM), issued by an AIK CA whose root the tenant has as a TPM root.
 */
export async function newDeviceKeys(
  flags: Record<string, unknown>,
  displayName: string,
): Promise<NewDeviceKeys> {
  if (!flags.tpm) {
    const keys = newSoftwareDeviceKeys();
    return {
      storage: 'software',
      request: {
        csrPem: await deviceCsr(keys.deviceKey, displayName),
        transportPublicKey: publicPem(keys.transportKey),
        softwareKeyStorage: true,
      },
      save: (keystore) => keystore.saveDeviceKeys(keys.deviceKey, keys.transportKey),
    };
  }
  const certFile = flags['aik-cert'] as string | undefined;
  if (!certFile)
    throw new UsageError(
      "register --tpm needs --aik-cert <file>: the certificate chain (PEM) of the TPM's AIK, issued by an AIK CA the tenant trusts",
    );
  try {
    const aik = aikFrom(certFile, flags['aik-handle'] as string | undefined);
    const made = createTpmDeviceKeys(tctiFrom(flags), aik, displayName);
    return {
      storage: 'tpm',
      request: {
        csrPem: made.csrPem,
        transportPublicKey: publicPem(made.transportPublicKey),
        tpmAttestation: made.attestation,
      },
      save: (keystore) => keystore.saveTpmDeviceKeys(made.record),
    };
  } catch (err) {
    if (err instanceof TpmSetupError) throw new UsageError(err.message);
    throw err;
  }
}
