/**
 * A tenant's device CA: creation (EC P-256, self-signed or under a platform
 * root), device certificates and CRLs. The private key is handed out only as
 * PKCS#8 DER for envelope encryption by the caller; it is never logged.
 */
import {
  createHash,
  createPrivateKey,
  randomBytes,
  sign as signWithKey,
  type KeyObject,
} from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import { webcrypto, type WebCryptoKey, x509 } from './provider';

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface DeviceCaMaterial {
  /** The CA certificate (PEM). */
  certificatePem: string;
  /** Certificates above the CA, nearest first (empty for a self-signed root). */
  parentChainPem: string[];
  /** The CA private key, PKCS#8 DER: encrypt before storing. */
  privateKeyPkcs8: Buffer;
}

export interface PlatformRoot {
  certificatePem: string;
  /** PKCS#8 PEM of the platform root's private key (EC P-256 or P-384, or RSA). */
  privateKeyPem: string;
}

export interface CreateDeviceCaOptions {
  tenantId: string;
  /** When set, the tenant CA is an intermediate signed by this root. */
  platformRoot?: PlatformRoot;
  validityYears?: number;
  now?: Date;
}

/** A positive serial carrying 128 random bits (17 octets with a non-zero first octet). */
export function randomSerialHex(): string {
  return '01' + randomBytes(16).toString('hex');
}

function caName(tenantId: string): string {
  return `CN=latchkey device CA ${tenantId}, O=latchkey`;
}

function signingParamsFor(key: KeyObject): { import: object; sign: object } {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
    const hash = curve === 'P-384' ? 'SHA-384' : 'SHA-256';
    return { import: { name: 'ECDSA', namedCurve: curve }, sign: { name: 'ECDSA', hash } };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { import: alg, sign: alg };
  }
  throw new Error('platform root key must be EC or RSA');
}

export async function createDeviceCa(options: CreateDeviceCaOptions): Promise<DeviceCaMaterial> {
  const now = options.now ?? new Date();
  const keys = (await webcrypto.subtle.generateKey(EC, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + (options.validityYears ?? 10));
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  let cert: x509.X509Certificate;
  let parentChainPem: string[] = [];
  if (options.platformRoot) {
    const root = new x509.X509Certificate(options.platformRoot.certificatePem);
    const rootKeyObject = createPrivateKey(options.platformRoot.privateKeyPem);
    const params = signingParamsFor(rootKeyObject);
    const rootKey = await webcrypto.subtle.importKey(
      'pkcs8',
      rootKeyObject.export({ type: 'pkcs8', format: 'der' }),
      params.import as webcrypto.EcKeyImportParams,
      false,
      ['sign'],
    );
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(root));
    cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: caName(options.tenantId),
      issuer: root.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: rootKey,
      signingAlgorithm: params.sign as webcrypto.EcdsaParams,
      extensions,
    });
    parentChainPem = [root.toString('pem')];
  } else {
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerialHex(),
      name: caName(options.tenantId),
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: SIGNING,
      extensions,
    });
  }
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { certificatePem: cert.toString('pem'), parentChainPem, privateKeyPkcs8: pkcs8 };
}

export interface IssuedDeviceCertificate {
  serialHex: string;
  certificatePem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface RevokedCertificate {
  serialHex: string;
  revokedAt: Date;
  reason: 'superseded' | 'cessationOfOperation' | 'keyCompromise' | 'unspecified';
}

/** SAN URI naming a device: urn:latchkey:tenant:<tenant>:device:<device>. */
export function deviceUrn(tenantId: string, deviceId: string): string {
  return `urn:latchkey:tenant:${tenantId}:device:${deviceId}`;
}

/** ecdsa-with-SHA256: how the tenant CA (EC P-256) signs. */
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${lines}${lines.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/**
 * DER of one TLV with a definite length. Only for writing certificates this CA
 * makes (never for reading input): asn1js re-encodes a TBSCertificate in about
 * a millisecond, twenty times the ECDSA signature, so the parts that change per
 * device are written here and the fixed parts are encoded by the library once.
 */
function der(tag: number, ...value: Buffer[]): Buffer {
  const n = value.reduce((sum, b) => sum + b.length, 0);
  const head =
    n < 0x80 ? [tag, n] : n < 0x100 ? [tag, 0x81, n] : [tag, 0x82, (n >> 8) & 0xff, n & 0xff];
  if (n > 0xffff) throw new Error('DER value too long');
  return Buffer.concat([Buffer.from(head), ...value], head.length + n);
}

const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const BIT_STRING = 0x03;
const UTF8_STRING = 0x0c;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
/** [0] EXPLICIT INTEGER 2: version v3. */
const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
/** The AttributeType of commonName (2.5.4.3). */
const OID_COMMON_NAME = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
/** extnIDs of subjectAltName (2.5.29.17) and subjectKeyIdentifier (2.5.29.14). */
const OID_SUBJECT_ALT_NAME = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]);
const OID_SUBJECT_KEY_IDENTIFIER = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0e]);

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime after (as @peculiar/asn1-x509 encodes it). */
function derTime(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits =
    iso.slice(0, 4) +
    iso.slice(5, 7) +
    iso.slice(8, 10) +
    iso.slice(11, 13) +
    iso.slice(14, 16) +
    iso.slice(17, 19);
  return date.getUTCFullYear() > 2049
    ? der(GENERALIZED_TIME, Buffer.from(digits + 'Z', 'latin1'))
    : der(UTC_TIME, Buffer.from(digits.slice(2) + 'Z', 'latin1'));
}

/**
 * A loaded tenant CA that signs device certificates and CRLs. The issuer name,
 * signature algorithm and the extensions every device certificate shares are
 * encoded once with @peculiar/x509; per device only the serial, validity,
 * subject, key, SAN and key identifier are written, and one native ECDSA
 * signature (node:crypto) is made. Tests check the result against the
 * library's own encoding of the same certificate, and with openssl.
 */
export class DeviceCertificateAuthority {
  private readonly issuerDer: Buffer;
  private readonly algorithmDer: Buffer;
  private readonly sharedExtensionsDer: Buffer;

  private constructor(
    readonly certificate: x509.X509Certificate,
    readonly parentChainPem: readonly string[],
    private readonly signingKey: WebCryptoKey,
    private readonly privateKey: KeyObject,
    private readonly authorityKeyId: x509.AuthorityKeyIdentifierExtension,
  ) {
    this.issuerDer = Buffer.from(
      AsnConvert.serialize(
        AsnConvert.parse(certificate.subjectName.toArrayBuffer(), asn1X509.Name),
      ),
    );
    this.algorithmDer = Buffer.from(
      AsnConvert.serialize(new asn1X509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 })),
    );
    this.sharedExtensionsDer = Buffer.concat(
      [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        authorityKeyId,
      ].map((e) => Buffer.from(e.rawData)),
    );
  }
  static async load(material: DeviceCaMaterial): Promise<DeviceCertificateAuthority> {
    const certificate = new x509.X509Certificate(material.certificatePem);
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      material.privateKeyPkcs8,
      EC,
      false,
      ['sign'],
    );
    const privateKey = createPrivateKey({
      key: material.privateKeyPkcs8,
      format: 'der',
      type: 'pkcs8',
    });
    const aki = await x509.AuthorityKeyIdentifierExtension.create(certificate);
    return new DeviceCertificateAuthority(
      certificate,
      material.parentChainPem,
      signingKey,
      privateKey,
      aki,
    );
  }

  get certificatePem(): string {
    return this.certificate.toString('pem');
  }

  /** The chain a device gets with its certificate: the CA, then its parents. */
  get chainPem(): string[] {
    return [this.certificatePem, ...this.parentChainPem];
  }

  async issue(params: {
    tenantId: string;
    deviceId: string;
    /** DER SubjectPublicKeyInfo of the device key (as verifyDeviceCsr returns it). */
    spki: Buffer;
    validityDays: number;
    now?: Date;
  }): Promise<IssuedDeviceCertificate> {
    const now = params.now ?? new Date();
    const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const notAfter = new Date(notBefore.getTime() + params.validityDays * 86_400_000);
    const serialHex = randomSerialHex();
    const urn = deviceUrn(params.tenantId, params.deviceId);
    if (!/^[!-~]+$/.test(urn)) throw new Error('tenant and device ids must be printable ASCII');
    const tbs = der(
      SEQUENCE,
      VERSION_V3,
      der(INTEGER, Buffer.from(serialHex, 'hex')),
      this.algorithmDer,
      this.issuerDer,
      der(SEQUENCE, derTime(notBefore), derTime(notAfter)),
      der(
        SEQUENCE,
        der(SET, der(SEQUENCE, OID_COMMON_NAME, der(UTF8_STRING, Buffer.from(params.deviceId)))),
      ),
      params.spki,
      der(
        0xa3, // [3] EXPLICIT Extensions
        der(
          SEQUENCE,
          this.sharedExtensionsDer,
          der(
            SEQUENCE,
            OID_SUBJECT_ALT_NAME,
            der(
              OCTET_STRING,
              // GeneralNames { uniformResourceIdentifier [6] IA5String }
              der(SEQUENCE, der(0x86, Buffer.from(urn, 'latin1'))),
            ),
          ),
          der(
            SEQUENCE,
            OID_SUBJECT_KEY_IDENTIFIER,
            der(OCTET_STRING, der(OCTET_STRING, createHash('sha1').update(params.spki).digest())),
          ),
        ),
      ),
    );
    const signature = signWithKey('sha256', tbs, { key: this.privateKey, dsaEncoding: 'der' });
    const cert = der(
      SEQUENCE,
      tbs,
      this.algorithmDer,
      der(BIT_STRING, Buffer.from([0]), signature),
    );
    return { serialHex, certificatePem: pem('CERTIFICATE', cert), notBefore, notAfter };
  }

  /** A CRL (DER) listing the revoked certificates, signed by this CA. */
  async crl(params: {
    crlNumber: bigint;
    revoked: readonly RevokedCertificate[];
    thisUpdate?: Date;
    nextUpdate: Date;
  }): Promise<Buffer> {
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.certificate.subjectName,
      thisUpdate: params.thisUpdate ?? new Date(),
      nextUpdate: params.nextUpdate,
      signingKey: this.signingKey,
      signingAlgorithm: SIGNING,
      extensions: [this.authorityKeyId, crlNumberExtension(params.crlNumber)],
      entries: params.revoked.map((r) => ({
        serialNumber: r.serialHex,
        revocationDate: r.revokedAt,
        reason: x509.X509CrlReason[r.reason],
      })),
    });
    return Buffer.from(crl.rawData);
  }
}

/** cRLNumber (2.5.29.20), a DER INTEGER. */
function crlNumberExtension(n: bigint): x509.Extension {
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = '00' + hex;
  const value = Buffer.concat([Buffer.from([0x02, hex.length / 2]), Buffer.from(hex, 'hex')]);
  return new x509.Extension('2.5.29.20', false, value);
}
