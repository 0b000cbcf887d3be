/** PKCS#10 CSRs from devices: parsed, signature checked (proof of possession), key policy applied. */
import { createPublicKey, type KeyObject, verify as verifySignature } from 'node:crypto';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { x509 } from './provider';
import { describeDeviceKey, publicKeyThumbprint } from './key-policy';
import { X509Error } from './x509-error';

export const MAX_CSR_PEM_LENGTH = 16 * 1024;

export interface VerifiedCsr {
  /** The device key (the CSR's subject public key). */
  publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo of the device key. */
  spki: Buffer;
  /** e.g. "EC-P-256", "RSA-2048". */
  keyKind: string;
  /** JWS algorithms this key may sign device assertions with. */
  jwsAlgorithms: readonly string[];
  /** SHA-256 of the SPKI, base64url. */
  thumbprint: string;
}

const PEM =
  /^-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END (NEW )?CERTIFICATE REQUEST-----\s*$/;

/**
 * Parses a CSR (PEM), checks that it is signed by the key it carries and that
 * the key is allowed. Throws X509Error: MALFORMED_CSR, CSR_SIGNATURE_INVALID, KEY_NOT_ALLOWED.
 */
export async function verifyDeviceCsr(pem: string): Promise<VerifiedCsr> {
  const text = pem.trim() + '\n';
  if (pem.length > MAX_CSR_PEM_LENGTH || !PEM.test(text)) {
    throw new X509Error('MALFORMED_CSR', 'must be a PEM "CERTIFICATE REQUEST"');
  }
  let csr: CertificationRequest;
  let der: Buffer;
  let publicKey: KeyObject;
  let spki: Buffer;
  try {
    der = Buffer.from(PEM.exec(text)![2]!.replace(/\s+/g, ''), 'base64');
    csr = AsnConvert.parse(der, CertificationRequest);
    spki = Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo));
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new X509Error('MALFORMED_CSR', 'the certificate request cannot be parsed');
  }
  const described = describeDeviceKey(publicKey);
  let valid = false;
  try {
    valid = await verifySignedBy(csr, der, publicKey);
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new X509Error(
      'CSR_SIGNATURE_INVALID',
      'the certificate request is not signed by the key it carries',
    );
  }
  return {
    publicKey,
    spki,
    keyKind: described.kind,
    jwsAlgorithms: described.jwsAlgorithms,
    thumbprint: publicKeyThumbprint(spki),
  };
}

/** Signature algorithms checked natively (node:crypto); others go through WebCrypto. */
const NATIVE: Record<string, { hash: string; ec: boolean }> = {
  '1.2.840.10045.4.3.2': { hash: 'sha256', ec: true },
  '1.2.840.10045.4.3.3': { hash: 'sha384', ec: true },
  '1.2.840.10045.4.3.4': { hash: 'sha512', ec: true },
  '1.2.840.113549.1.1.11': { hash: 'sha256', ec: false },
  '1.2.840.113549.1.1.12': { hash: 'sha384', ec: false },
  '1.2.840.113549.1.1.13': { hash: 'sha512', ec: false },
};

/** The CSR's signature over its CertificationRequestInfo (as received), by `key`. */
async function verifySignedBy(
  csr: CertificationRequest,
  der: Buffer,
  key: KeyObject,
): Promise<boolean> {
  const alg = NATIVE[csr.signatureAlgorithm.algorithm];
  const tbs = csr.certificationRequestInfoRaw;
  if (!alg || !tbs) return new x509.Pkcs10CertificateRequest(der).verify();
  if (alg.ec !== (key.asymmetricKeyType === 'ec')) return false;
  return verifySignature(
    alg.hash,
    Buffer.from(tbs),
    alg.ec ? { key, dsaEncoding: 'der' } : key,
    Buffer.from(csr.signature),
  );
}
