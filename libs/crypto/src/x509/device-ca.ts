/**
 * A tenant's device CA: creation (EC P-256, self-signed or under a platform
 * root), device certificates and CRLs. The private key is handed out only as
 * PKCS#8 DER for envelope encryption by the caller; it is never logged.
 */
import { createHash, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
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

/** A loaded tenant CA that signs device certificates and CRLs. */
export class DeviceCertificateAuthority {
  private constructor(
    readonly certificate: x509.X509Certificate,
    readonly parentChainPem: readonly string[],
    private readonly signingKey: WebCryptoKey,
    private readonly authorityKeyId: x509.AuthorityKeyIdentifierExtension,
  ) {}

  static async load(material: DeviceCaMaterial): Promise<DeviceCertificateAuthority> {
    const certificate = new x509.X509Certificate(material.certificatePem);
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      material.privateKeyPkcs8,
      EC,
      false,
      ['sign'],
    );
    const aki = await x509.AuthorityKeyIdentifierExtension.create(certificate);
    return new DeviceCertificateAuthority(certificate, material.parentChainPem, signingKey, aki);
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
    /** DER SubjectPublicKeyInfo of the device key. */
    spki: Buffer;
    validityDays: number;
    now?: Date;
  }): Promise<IssuedDeviceCertificate> {
    const now = params.now ?? new Date();
    const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const notAfter = new Date(notBefore.getTime() + params.validityDays * 86_400_000);
    const serialHex = randomSerialHex();
    const publicKey = new x509.PublicKey(params.spki);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialHex,
      subject: [{ CN: [params.deviceId] }],
      issuer: this.certificate.subjectName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.signingKey,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: deviceUrn(params.tenantId, params.deviceId) },
        ]),
        this.authorityKeyId,
        new x509.SubjectKeyIdentifierExtension(
          createHash('sha1').update(params.spki).digest('hex'),
        ),
      ],
    });
    return { serialHex, certificatePem: cert.toString('pem'), notBefore, notAfter };
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
