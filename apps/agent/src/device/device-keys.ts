/** The device's software keys: the device key (EC P-256, signs the CSR and device assertions) and the transport key (RSA 2048, receives session keys). */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  webcrypto,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';

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

export function publicPem(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
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
