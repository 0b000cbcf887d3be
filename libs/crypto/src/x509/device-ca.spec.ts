import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDeviceCa, DeviceCertificateAuthority, deviceUrn } from './device-ca';
import { verifyDeviceCsr } from './device-csr';
import { x509 } from './provider';

const TENANT = '6a1f2d0e-8f57-4a39-9d51-2a3f4b5c6d7e';
const DEVICE = '0b6f1c2d-3e4f-4a5b-8c7d-9e0f1a2b3c4d';

function openssl(dir: string, ...args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
}

function opensslCsr(dir: string, keyArgs: string[]): string {
  openssl(dir, 'genpkey', ...keyArgs, '-out', 'device.key');
  openssl(dir, 'req', '-new', '-key', 'device.key', '-subj', '/CN=ignored', '-out', 'device.csr');
  return readFileSync(join(dir, 'device.csr'), 'utf8');
}

describe('device CA', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-ca-'));
  });

  it('issues a device certificate that openssl verifies against the tenant root', async () => {
    const material = await createDeviceCa({ tenantId: TENANT });
    const ca = await DeviceCertificateAuthority.load(material);
    const csr = await verifyDeviceCsr(
      opensslCsr(dir, ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']),
    );
    const issued = await ca.issue({
      tenantId: TENANT,
      deviceId: DEVICE,
      spki: csr.spki,
      validityDays: 365,
    });
    writeFileSync(join(dir, 'root.pem'), material.certificatePem);
    writeFileSync(join(dir, 'device.pem'), issued.certificatePem);
    expect(
      openssl(dir, 'verify', '-purpose', 'sslclient', '-CAfile', 'root.pem', 'device.pem'),
    ).toContain('device.pem: OK');

    const cert = new x509.X509Certificate(issued.certificatePem);
    expect(cert.subject).toBe(`CN=${DEVICE}`);
    expect(cert.serialNumber).toBe(issued.serialHex);
    expect(issued.serialHex).toHaveLength(34);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.toJSON()).toEqual([{ type: 'url', value: deviceUrn(TENANT, DEVICE) }]);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    expect(cert.getExtension(x509.KeyUsagesExtension)!.usages).toBe(
      x509.KeyUsageFlags.digitalSignature,
    );
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(365 * 86_400_000);
  });

  it.each([
    ['UTCTime', new Date('2026-11-25T12:34:56.789Z'), 365],
    ['GeneralizedTime after 2049', new Date('2049-06-30T23:59:59Z'), 400],
  ])(
    'writes a device certificate exactly as @peculiar/asn1-x509 encodes it (%s)',
    async (_name, now, validityDays) => {
      const ca = await DeviceCertificateAuthority.load(await createDeviceCa({ tenantId: TENANT }));
      const csr = await verifyDeviceCsr(
        opensslCsr(dir, ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']),
      );
      const issued = await ca.issue({
        tenantId: TENANT,
        deviceId: DEVICE,
        spki: csr.spki,
        validityDays,
        now,
      });
      const der = Buffer.from(issued.certificatePem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const parsed = AsnConvert.parse(der, Certificate);
      // The library re-encodes the parsed certificate to the very same bytes: the DER is canonical.
      expect(Buffer.from(AsnConvert.serialize(parsed.tbsCertificate))).toEqual(
        Buffer.from(parsed.tbsCertificateRaw!),
      );
      expect(Buffer.from(AsnConvert.serialize(parsed))).toEqual(der);
      const cert = new x509.X509Certificate(der);
      expect(cert.notBefore).toEqual(new Date(Math.floor(now.getTime() / 1000) * 1000));
      expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(validityDays * 86_400_000);
      expect(Buffer.from(cert.publicKey.rawData)).toEqual(csr.spki);
      expect(cert.issuer).toBe(ca.certificate.subject);
      expect(await cert.verify({ publicKey: ca.certificate.publicKey, signatureOnly: true })).toBe(
        true,
      );
      const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!;
      expect(ski.keyId).toBe(createHash('sha1').update(csr.spki).digest('hex'));
    },
  );

  it('issues intermediates under a platform root, and the chain verifies', async () => {
    openssl(dir, 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'p.key');
    openssl(dir, 'pkcs8', '-topk8', '-nocrypt', '-in', 'p.key', '-out', 'platform.key');
    openssl(
      dir,
      'req',
      '-x509',
      '-new',
      '-key',
      'platform.key',
      '-subj',
      '/CN=platform root',
      '-days',
      '30',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'platform.pem',
    );
    const material = await createDeviceCa({
      tenantId: TENANT,
      platformRoot: {
        certificatePem: readFileSync(join(dir, 'platform.pem'), 'utf8'),
        privateKeyPem: readFileSync(join(dir, 'platform.key'), 'utf8'),
      },
    });
    const ca = await DeviceCertificateAuthority.load(material);
    const csr = await verifyDeviceCsr(
      opensslCsr(dir, ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']),
    );
    const issued = await ca.issue({
      tenantId: TENANT,
      deviceId: DEVICE,
      spki: csr.spki,
      validityDays: 7,
    });
    expect(ca.chainPem).toHaveLength(2);
    writeFileSync(join(dir, 'intermediate.pem'), ca.chainPem[0]!);
    writeFileSync(join(dir, 'device.pem'), issued.certificatePem);
    expect(
      openssl(
        dir,
        'verify',
        '-CAfile',
        'platform.pem',
        '-untrusted',
        'intermediate.pem',
        'device.pem',
      ),
    ).toContain('device.pem: OK');
  });

  it('signs a CRL that openssl accepts and that lists the revoked serials', async () => {
    const material = await createDeviceCa({ tenantId: TENANT });
    const ca = await DeviceCertificateAuthority.load(material);
    const csr = await verifyDeviceCsr(
      opensslCsr(dir, ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']),
    );
    const issued = await ca.issue({
      tenantId: TENANT,
      deviceId: DEVICE,
      spki: csr.spki,
      validityDays: 1,
    });
    const der = await ca.crl({
      crlNumber: 7n,
      revoked: [
        { serialHex: issued.serialHex, revokedAt: new Date(), reason: 'cessationOfOperation' },
      ],
      nextUpdate: new Date(Date.now() + 86_400_000),
    });
    writeFileSync(join(dir, 'root.pem'), material.certificatePem);
    writeFileSync(join(dir, 'crl.der'), der);
    writeFileSync(join(dir, 'device.pem'), issued.certificatePem);
    const text = openssl(
      dir,
      'crl',
      '-inform',
      'DER',
      '-in',
      'crl.der',
      '-CAfile',
      'root.pem',
      '-noout',
      '-text',
    );
    expect(text).toMatch(/X509v3 CRL Number:\s+7/);
    expect(text.replace(/:/g, '').toLowerCase()).toContain(issued.serialHex.slice(2));
    openssl(dir, 'crl', '-inform', 'DER', '-in', 'crl.der', '-out', 'crl.pem');
    expect(() =>
      openssl(
        dir,
        'verify',
        '-crl_check',
        '-CAfile',
        'root.pem',
        '-CRLfile',
        'crl.pem',
        'device.pem',
      ),
    ).toThrow(/certificate revoked/);
  });
});

describe('device CSR', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-csr-'));
  });

  it.each([
    ['RSA 2048', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], 'RSA-2048'],
    ['RSA 4096', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:4096'], 'RSA-4096'],
    ['EC P-256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'EC-P-256'],
    ['EC P-384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], 'EC-P-384'],
  ])('accepts an openssl CSR with %s', async (_name, args, kind) => {
    expect((await verifyDeviceCsr(opensslCsr(dir, args))).keyKind).toBe(kind);
  });

  it.each([
    ['RSA 1024', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024']],
    ['EC P-521', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521']],
    ['EC secp256k1', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1']],
    ['Ed25519', ['-algorithm', 'ED25519']],
  ])('refuses a CSR with a %s key', async (_name, args) => {
    await expect(verifyDeviceCsr(opensslCsr(dir, args))).rejects.toMatchObject({
      code: 'KEY_NOT_ALLOWED',
    });
  });

  it('refuses a CSR whose signature does not match its key', async () => {
    const pem = opensslCsr(dir, ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] ^= 0x01; // inside the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(verifyDeviceCsr(tampered)).rejects.toMatchObject({
      code: 'CSR_SIGNATURE_INVALID',
    });
  });

  it('refuses text that is not a CSR', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await expect(
      verifyDeviceCsr(key.publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    ).rejects.toMatchObject({ code: 'MALFORMED_CSR' });
    await expect(
      verifyDeviceCsr(
        '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----',
      ),
    ).rejects.toMatchObject({ code: 'MALFORMED_CSR' });
  });
});
