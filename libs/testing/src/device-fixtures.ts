/** Real device material for tests: an EC P-256 device key, its PKCS#10 CSR, a transport key. */
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface DeviceMaterial {
  csrPem: string;
  transportPublicKey: string;
}

export async function newDeviceMaterial(name = 'test-device'): Promise<DeviceMaterial> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: alg,
  });
  const transport = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    csrPem: csr.toString('pem'),
    transportPublicKey: transport.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
