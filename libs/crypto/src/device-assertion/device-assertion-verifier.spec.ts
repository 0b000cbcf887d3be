import { randomUUID, webcrypto } from 'node:crypto';
import { SignJWT } from 'jose';
import { createDeviceCa, DeviceCertificateAuthority } from '../x509/device-ca';
import { x509 } from '../x509/provider';
import {
  type DeviceAssertionErrorCode,
  type DeviceRecord,
  DeviceAssertionVerifier,
} from './device-assertion-verifier';

const TENANT = randomUUID();
const DEVICE = randomUUID();
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

describe('DeviceAssertionVerifier', () => {
  let caPem: string;
  let certPem: string;
  let keys: webcrypto.CryptoKeyPair;
  let record: DeviceRecord;
  let verifier: DeviceAssertionVerifier;
  const used = new Set<string>();

  beforeAll(async () => {
    const material = await createDeviceCa({ tenantId: TENANT });
    const ca = await DeviceCertificateAuthority.load(material);
    caPem = material.certificatePem;
    keys = (await webcrypto.subtle.generateKey(ALG, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
    certPem = (await ca.issue({ tenantId: TENANT, deviceId: DEVICE, spki, validityDays: 1 }))
      .certificatePem;
    record = { status: 'active', certificatePem: certPem };
    verifier = new DeviceAssertionVerifier(
      {
        tenantCaCertificate: async (t) => (t === TENANT ? caPem : null),
        device: async (t, d) => (t === TENANT && d === DEVICE ? record : null),
      },
      {
        audience: 'latchkey-auth',
        rememberJti: async (jti) => (used.has(jti) ? false : (used.add(jti), true)),
      },
    );
  });

  async function assertion(
    header: Record<string, unknown> = {},
    claims: Record<string, unknown> = {},
    key = keys.privateKey,
  ) {
    const der = Buffer.from(new x509.X509Certificate(certPem).rawData).toString('base64');
    return new SignJWT({
      tid: TENANT,
      nonce: 'n-1',
      sub: DEVICE,
      aud: 'latchkey-auth',
      iat: Math.floor(Date.now() / 1000),
      jti: randomUUID(),
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', x5c: [der], ...header })
      .sign(key);
  }

  async function refusal(
    jws: string | Promise<string>,
    expected = {},
  ): Promise<DeviceAssertionErrorCode> {
    return verifier.verify(await jws, expected).then(
      () => {
        throw new Error('accepted');
      },
      (e: { code: DeviceAssertionErrorCode }) => e.code,
    );
  }

  it('accepts an assertion with x5c, and one with kid = device id', async () => {
    const ok = await verifier.verify(await assertion(), { nonce: 'n-1' });
    expect(ok).toMatchObject({ tenantId: TENANT, deviceId: DEVICE });
    const byKid = await assertion({ x5c: undefined, kid: DEVICE });
    expect((await verifier.verify(byKid)).deviceId).toBe(DEVICE);
  });

  it('refuses a replayed jti', async () => {
    const jws = await assertion();
    await verifier.verify(jws);
    expect(await refusal(jws)).toBe('REPLAYED_ASSERTION');
  });

  it('refuses a signature by another key', async () => {
    const other = (await webcrypto.subtle.generateKey(ALG, true, [
      'sign',
    ])) as webcrypto.CryptoKeyPair;
    expect(await refusal(assertion({}, {}, other.privateKey))).toBe('BAD_SIGNATURE');
  });

  it('refuses the wrong audience, an iat more than five minutes away, the wrong nonce', async () => {
    expect(await refusal(assertion({}, { aud: 'other' }))).toBe('WRONG_AUDIENCE');
    expect(await refusal(assertion({}, { iat: Math.floor(Date.now() / 1000) - 301 }))).toBe(
      'STALE_ASSERTION',
    );
    expect(await refusal(assertion({}, { iat: Math.floor(Date.now() / 1000) + 301 }))).toBe(
      'STALE_ASSERTION',
    );
    expect(await refusal(assertion(), { nonce: 'n-2' })).toBe('NONCE_MISMATCH');
  });

  it('refuses a certificate other than the current one, another tenant, and a disabled device', async () => {
    const stranger = await createDeviceCa({ tenantId: TENANT });
    const strangerCa = await DeviceCertificateAuthority.load(stranger);
    const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
    const forged = await strangerCa.issue({
      tenantId: TENANT,
      deviceId: DEVICE,
      spki,
      validityDays: 1,
    });
    const forgedDer = Buffer.from(new x509.X509Certificate(forged.certificatePem).rawData);
    expect(await refusal(assertion({ x5c: [forgedDer.toString('base64')] }))).toBe(
      'UNTRUSTED_CERTIFICATE',
    );
    // Even when the directory holds it, a certificate from another CA is not trusted.
    record = { status: 'active', certificatePem: forged.certificatePem };
    expect(await refusal(assertion({ x5c: undefined, kid: DEVICE }))).toBe('UNTRUSTED_CERTIFICATE');
    record = { status: 'disabled', certificatePem: certPem };
    expect(await refusal(assertion())).toBe('DEVICE_NOT_ACTIVE');
    record = { status: 'active', certificatePem: certPem };
    expect(await refusal(assertion({}, { tid: randomUUID() }))).toBe('UNKNOWN_DEVICE');
  });

  it('accepts a disabled device only when told to, and only with a valid signature', async () => {
    const lenient = new DeviceAssertionVerifier(
      {
        tenantCaCertificate: async (t) => (t === TENANT ? caPem : null),
        device: async (t, d) => (t === TENANT && d === DEVICE ? record : null),
      },
      { audience: 'latchkey-auth', acceptStatuses: ['active', 'disabled'] },
    );
    record = { status: 'disabled', certificatePem: certPem };
    try {
      const ok = await lenient.verify(await assertion());
      expect(ok.device.status).toBe('disabled');
      const other = (await webcrypto.subtle.generateKey(ALG, true, [
        'sign',
      ])) as webcrypto.CryptoKeyPair;
      const forged = await assertion({}, {}, other.privateKey);
      await expect(lenient.verify(forged)).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
      record = { status: 'deleted', certificatePem: certPem };
      await expect(lenient.verify(await assertion())).rejects.toMatchObject({
        code: 'DEVICE_NOT_ACTIVE',
      });
    } finally {
      record = { status: 'active', certificatePem: certPem };
    }
  });

  it('refuses alg none and garbage', async () => {
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ tid: TENANT, sub: DEVICE, iat: Math.floor(Date.now() / 1000), jti: 'x' }),
    ).toString('base64url')}.`;
    expect(await refusal(none)).toBe('MALFORMED_ASSERTION');
    expect(await refusal('not.a.jws')).toBe('MALFORMED_ASSERTION');
  });
});
