/**
 * A local AIK CA: a self-signed root standing in for a TPM vendor's (a tenant
 * configures it as its TPM root) that certifies an AIK. For the tests and for
 * `npm run demo --tpm` against a software TPM; a real deployment trusts the TPM
 * vendors' roots instead.
 */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * A TPM vendor root (self-signed, standing in for the one a tenant configures as
 * its TPM root) and the AIK certificate it issues for `aikSpki` (DER), with the
 * tcg-kp-AIKCertificate usage.
 */
export async function tpmRootAndAikCertificate(
  aikSpki: Buffer,
): Promise<{ rootPem: string; rootSubject: string; aikDer: Buffer; aikPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, [
    'sign',
    'verify',
  ])) as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Test TPM Vendor Root',
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true)],
  });
  const aik = await x509.X509CertificateGenerator.create({
    subject: 'CN=AIK',
    issuer: root.subject,
    publicKey: new x509.PublicKey(aikSpki),
    signingKey: keys.privateKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension(['2.23.133.8.3']),
    ],
  });
  return {
    rootPem: root.toString('pem'),
    rootSubject: root.subject,
    aikDer: Buffer.from(aik.rawData),
    aikPem: aik.toString('pem'),
  };
}
