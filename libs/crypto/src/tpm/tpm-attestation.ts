/**
 * Verifies a TPM 2.0 key attestation given in the WebAuthn "tpm" statement
 * structure (x5c AIK chain, certInfo = TPMS_ATTEST, pubArea = TPMT_PUBLIC,
 * sig), the same for device keys and user keys, against per-tenant roots:
 * magic TPM_GENERATED, type ATTEST_CERTIFY, extraData bound to the request,
 * certified name = name of pubArea, pubArea's key = the expected key, the key
 * non-migratable (fixedTPM, fixedParent), sig by the AIK, AIK chain valid.
 */
import {
  createPublicKey,
  timingSafeEqual,
  verify as verifySignature,
  type KeyObject,
} from 'node:crypto';
import { x509 } from '../x509/provider';
import {
  parseTpmsAttest,
  parseTpmtPublic,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_CERTIFY,
  TPMA_OBJECT,
  tpmObjectName,
  TpmParseError,
} from './tpm-structures';

/** tcg-kp-AIKCertificate: the AIK certificate's extended key usage. */
export const TCG_KP_AIK_CERTIFICATE = '2.23.133.8.3';

export interface TpmAttestationStatement {
  x5c: Uint8Array[];
  certInfo: Uint8Array;
  pubArea: Uint8Array;
  sig: Uint8Array;
  /** COSE algorithm of sig: -7 ES256, -35 ES384, -257 RS256, -37 PS256. */
  alg: number;
}

export interface TpmAttestationExpectations {
  /** The tenant's TPM roots (PEM). An empty list refuses every attestation. */
  trustAnchorsPem: readonly string[];
  /** What certInfo.extraData must equal (e.g. SHA-256 of the CSR's DER). */
  expectedExtraData: Buffer;
  /** DER SubjectPublicKeyInfo of the key the statement must attest. */
  expectedSpki: Buffer;
  now?: Date;
}

export class TpmAttestationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TpmAttestationError';
  }
}

const COSE: Record<number, { hash: string; kind: 'ec' | 'rsa' | 'pss' }> = {
  [-7]: { hash: 'sha256', kind: 'ec' },
  [-35]: { hash: 'sha384', kind: 'ec' },
  [-257]: { hash: 'sha256', kind: 'rsa' },
  [-258]: { hash: 'sha384', kind: 'rsa' },
  [-37]: { hash: 'sha256', kind: 'pss' },
};

const fail = (message: string): never => {
  throw new TpmAttestationError(message);
};

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function unsignedEqual(a: Buffer, b: Buffer): boolean {
  const strip = (x: Buffer) => {
    let i = 0;
    while (i < x.length - 1 && x[i] === 0) i++;
    return x.subarray(i);
  };
  return equal(strip(a), strip(b));
}

function pubAreaMatches(pub: ReturnType<typeof parseTpmtPublic>, expected: KeyObject): boolean {
  const jwk = expected.export({ format: 'jwk' });
  if (pub.type === 'rsa') {
    if (jwk.kty !== 'RSA') return false;
    const e = Buffer.alloc(4);
    e.writeUInt32BE(pub.exponent);
    return (
      unsignedEqual(pub.modulus, Buffer.from(jwk.n!, 'base64url')) &&
      unsignedEqual(e, Buffer.from(jwk.e!, 'base64url'))
    );
  }
  return (
    jwk.kty === 'EC' &&
    jwk.crv === pub.curve &&
    unsignedEqual(pub.x, Buffer.from(jwk.x!, 'base64url')) &&
    unsignedEqual(pub.y, Buffer.from(jwk.y!, 'base64url'))
  );
}

export async function verifyTpmAttestation(
  statement: TpmAttestationStatement,
  expect: TpmAttestationExpectations,
): Promise<{ aikCertificate: x509.X509Certificate }> {
  const now = expect.now ?? new Date();
  const certInfo = Buffer.from(statement.certInfo);
  const pubArea = Buffer.from(statement.pubArea);
  let attest: ReturnType<typeof parseTpmsAttest>;
  let pub: ReturnType<typeof parseTpmtPublic>;
  try {
    pub = parseTpmtPublic(pubArea);
    attest = parseTpmsAttest(certInfo);
  } catch (err) {
    if (err instanceof TpmParseError || err instanceof RangeError)
      return fail(`malformed TPM structure: ${err.message}`);
    throw err;
  }
  // pubArea: the expected key, and a key that cannot leave the TPM.
  if (
    !pubAreaMatches(pub, createPublicKey({ key: expect.expectedSpki, format: 'der', type: 'spki' }))
  )
    fail('pubArea is not the key of the request');
  const required = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent;
  if ((pub.objectAttributes & required) !== required)
    fail('the attested key is not fixedTPM and fixedParent');
  // certInfo.
  if (attest.magic !== TPM_GENERATED_VALUE) fail('certInfo.magic is not TPM_GENERATED');
  if (attest.type !== TPM_ST_ATTEST_CERTIFY) fail('certInfo.type is not TPM_ST_ATTEST_CERTIFY');
  if (!equal(attest.extraData, expect.expectedExtraData))
    fail('certInfo.extraData is not bound to this request');
  let name: Buffer;
  try {
    name = tpmObjectName(pubArea, pub.nameAlg);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (!equal(attest.certifiedName, name)) fail('certInfo does not certify pubArea (name mismatch)');

  // The AIK's signature over certInfo.
  if (!statement.x5c.length) fail('x5c is empty');
  let chain: x509.X509Certificate[];
  try {
    chain = statement.x5c.map((der) => new x509.X509Certificate(Buffer.from(der)));
  } catch {
    return fail('x5c holds a malformed certificate');
  }
  const aik = chain[0]!;
  const cose = COSE[statement.alg] ?? fail(`unsupported alg ${statement.alg}`);
  const aikKey = createPublicKey({
    key: Buffer.from(aik.publicKey.rawData),
    format: 'der',
    type: 'spki',
  });
  const sig = Buffer.from(statement.sig);
  const signed =
    cose.kind === 'ec'
      ? verifySignature(cose.hash, certInfo, { key: aikKey, dsaEncoding: 'der' }, sig) ||
        verifySignature(cose.hash, certInfo, { key: aikKey, dsaEncoding: 'ieee-p1363' }, sig)
      : verifySignature(
          cose.hash,
          certInfo,
          cose.kind === 'pss' ? { key: aikKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */ } : aikKey,
          sig,
        );
  if (!signed) fail('sig is not a valid AIK signature over certInfo');

  // The AIK certificate and its chain to one of the tenant's roots.
  const eku = aik.getExtension(x509.ExtendedKeyUsageExtension);
  if (!eku?.usages.includes(TCG_KP_AIK_CERTIFICATE))
    fail('the AIK certificate lacks the tcg-kp-AIKCertificate usage');
  if (aik.getExtension(x509.BasicConstraintsExtension)?.ca) fail('the AIK certificate is a CA');
  const anchors = expect.trustAnchorsPem.map((pem) => new x509.X509Certificate(pem));
  if (!anchors.length) fail('the tenant has no TPM roots configured');
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    if (cert.notBefore > now || cert.notAfter < now) fail(`x5c[${i}] is not valid now`);
    const issuer = chain[i + 1];
    if (issuer) {
      if (!(await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true })))
        fail(`x5c[${i}] is not signed by x5c[${i + 1}]`);
      continue;
    }
    const candidates = anchors.filter((a) => a.subject === cert.issuer);
    let anchored = false;
    for (const anchor of candidates) {
      if (anchor.notBefore > now || anchor.notAfter < now) continue;
      if (await cert.verify({ publicKey: anchor.publicKey, signatureOnly: true })) anchored = true;
    }
    if (!anchored) fail('the AIK chain does not lead to a TPM root of the tenant');
  }
  return { aikCertificate: aik };
}
