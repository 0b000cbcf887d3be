/** A PKCS#10 CSR for a key that cannot leave its TPM: the TPM signs the request info. */
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const COMMON_NAME = '2.5.4.3';

/**
 * A PEM CSR of the EC P-256 key `spki` (DER) whose request info is signed by
 * `signDer` (ECDSA/SHA-256, DER signature), with subject CN=`commonName` (or empty).
 */
export function ecdsaCsr(
  spki: Buffer,
  signDer: (tbs: Buffer) => Buffer,
  commonName?: string,
): string {
  const subject = new Name(
    commonName
      ? [
          new RelativeDistinguishedName([
            new AttributeTypeAndValue({
              type: COMMON_NAME,
              value: new AttributeValue({ utf8String: commonName }),
            }),
          ]),
        ]
      : [],
  );
  const info = new CertificationRequestInfo({
    subject,
    subjectPKInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
  });
  const tbs = Buffer.from(AsnConvert.serialize(info));
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    signature: new Uint8Array(signDer(tbs)).buffer,
  });
  const der = Buffer.from(AsnConvert.serialize(csr));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** The DER of a PEM CSR (what registration's TPM attestation binds: extraData = SHA-256 of it). */
export function csrDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}
