import {
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  constants,
  hkdfSync,
  type KeyObject,
  privateDecrypt,
  randomBytes,
} from 'node:crypto';
import { CompactEncrypt, compactVerify, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  createDeviceCa,
  DeviceAssertionVerifier,
  DeviceCertificateAuthority,
} from '@latchkey/crypto';
import {
  deviceAssertion,
  keySignInRequest,
  openSessionKey,
  proofOfPossession,
  type SessionKeyDecrypter,
  prtProof,
  softwareSigner,
} from './device-protocol';

const device = {
  tenantId: '6f1c9b1e-2f55-4a3c-9d57-1b6a4f1c2e10',
  deviceId: '0b7e3f9a-8a41-4f0e-b0a4-5c1d2e3f4a5b',
};
const issuer = 'http://127.0.0.1:8083';
const deviceKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const userKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const credential = { userId: 'u-1', credentialId: 'cred-abc', algorithm: 'ES256' as const };

describe('device protocol messages', () => {
  it('signs a key sign-in request with the device key around a user assertion that carries the same nonce', async () => {
    const nonce = randomBytes(32).toString('base64url');
    const jws = await keySignInRequest(
      device,
      deviceKey,
      credential,
      softwareSigner(userKey, 'ES256'),
      issuer,
      nonce,
    );
    expect(decodeProtectedHeader(jws)).toEqual({ alg: 'ES256', kid: device.deviceId });
    const outer = await jwtVerify(jws, createPublicKey(deviceKey), { audience: issuer });
    expect(outer.payload).toMatchObject({ tid: device.tenantId, sub: device.deviceId, nonce });
    const inner = outer.payload.user_assertion as string;
    expect(decodeProtectedHeader(inner)).toEqual({ alg: 'ES256', kid: 'cred-abc' });
    const { payload } = await jwtVerify(inner, createPublicKey(userKey), {
      audience: issuer,
      issuer: 'u-1',
    });
    expect(payload.request_nonce).toBe(nonce);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
    // The device key does not verify the user's part, nor the user key the device's.
    await expect(jwtVerify(inner, createPublicKey(deviceKey))).rejects.toThrow();
  });

  it('keys the PRT proof with HKDF-SHA256(session key, salt = ctx, info latchkey/prt-proof/v1)', async () => {
    const sessionKey = randomBytes(32);
    const ctx = randomBytes(32);
    const proof = await prtProof(device, sessionKey, issuer, 'n-1', ctx);
    const header = decodeProtectedHeader(proof);
    expect(header).toEqual({ alg: 'HS256', ctx: ctx.toString('base64url') });
    const key = Buffer.from(hkdfSync('sha256', sessionKey, ctx, 'latchkey/prt-proof/v1', 32));
    const [h, p, s] = proof.split('.');
    expect(createHmac('sha256', key).update(`${h}.${p}`).digest('base64url')).toBe(s);
    expect(decodeJwt(proof)).toMatchObject({
      tid: device.tenantId,
      sub: device.deviceId,
      aud: issuer,
      nonce: 'n-1',
    });
    // A fresh ctx each time: two proofs never share a key.
    const other = decodeProtectedHeader(await prtProof(device, sessionKey, issuer, 'n-1'));
    expect(other.ctx).not.toBe(header.ctx);
  });

  it('opens a session key JWE sent to an RSA transport key (RSA-OAEP-256 + A256GCM)', async () => {
    const transport = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const sessionKey = randomBytes(32);
    const jwe = await new CompactEncrypt(sessionKey)
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
      .encrypt(transport.publicKey);
    expect(await openSessionKey(jwe, transport.privateKey)).toEqual(sessionKey);
  });

  /** A decrypter as the TPM's transport key is one: only the content-encryption key is unwrapped by it. */
  const rsaOaep256 = (key: KeyObject, seen: Buffer[] = []): SessionKeyDecrypter => ({
    alg: 'RSA-OAEP-256',
    decryptKey: async (encryptedKey) => {
      seen.push(encryptedKey);
      return privateDecrypt(
        { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        encryptedKey,
      );
    },
  });

  it('opens a session key JWE with a transport key that only unwraps the content-encryption key (TPM mode)', async () => {
    const transport = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const sessionKey = randomBytes(32);
    const jwe = await new CompactEncrypt(sessionKey)
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
      .encrypt(transport.publicKey);
    const seen: Buffer[] = [];
    expect(await openSessionKey(jwe, rsaOaep256(transport.privateKey, seen))).toEqual(sessionKey);
    expect(seen).toEqual([Buffer.from(jwe.split('.')[1]!, 'base64url')]);
  });

  it('refuses, in TPM mode, a JWE of another algorithm, a tampered one and a wrong transport key', async () => {
    const transport = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwe = await new CompactEncrypt(randomBytes(32))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
      .encrypt(transport.publicKey);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ecdh = await new CompactEncrypt(randomBytes(32))
      .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM' })
      .encrypt(ec.publicKey);
    await expect(openSessionKey(ecdh, rsaOaep256(transport.privateKey))).rejects.toThrow(
      /uses ECDH-ES\/A256GCM; the transport key takes RSA-OAEP-256\/A256GCM/,
    );
    const parts = jwe.split('.');
    const tag = Buffer.from(parts[4]!, 'base64url');
    tag[0] ^= 1;
    parts[4] = tag.toString('base64url');
    await expect(
      openSessionKey(parts.join('.'), rsaOaep256(transport.privateKey)),
    ).rejects.toThrow();
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    await expect(openSessionKey(jwe, rsaOaep256(stranger))).rejects.toThrow();
    await expect(openSessionKey('a.b.c', rsaOaep256(transport.privateKey))).rejects.toThrow(
      /not a compact JWE/,
    );
  });

  it('signs device assertions and sign-in requests with a device key that is only a signer (TPM mode)', async () => {
    const calls: Buffer[] = [];
    const soft = softwareSigner(deviceKey, 'ES256');
    const tpmLike = {
      alg: 'ES256' as const,
      sign: (input: Buffer) => (calls.push(input), soft.sign(input)),
    };
    const a = await deviceAssertion(device, tpmLike);
    const verified = await jwtVerify(a, createPublicKey(deviceKey), {
      audience: 'latchkey-provisioning',
    });
    expect(verified.protectedHeader).toEqual({ alg: 'ES256', kid: device.deviceId });
    expect(verified.payload).toMatchObject({ tid: device.tenantId, sub: device.deviceId });
    expect(typeof verified.payload.jti).toBe('string');
    const signIn = await keySignInRequest(
      device,
      tpmLike,
      credential,
      softwareSigner(userKey, 'ES256'),
      issuer,
      'n-2',
    );
    const outer = await jwtVerify(signIn, createPublicKey(deviceKey), { audience: issuer });
    expect(outer.payload).toMatchObject({ nonce: 'n-2', sub: device.deviceId });
    expect(calls).toHaveLength(2);
  });

  it('refuses a session key that is not 32 bytes', async () => {
    const transport = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwe = await new CompactEncrypt(randomBytes(16))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
      .encrypt(transport.publicKey);
    await expect(openSessionKey(jwe, transport.privateKey)).rejects.toThrow(/32 bytes/);
  });

  it('makes device assertions for provisioning (kid = device id, a jti) and proofs over the challenge', async () => {
    const a = await deviceAssertion(device, deviceKey);
    const { payload, protectedHeader } = await jwtVerify(a, createPublicKey(deviceKey), {
      audience: 'latchkey-provisioning',
    });
    expect(protectedHeader.kid).toBe(device.deviceId);
    expect(payload).toMatchObject({ tid: device.tenantId, sub: device.deviceId });
    expect(payload.jti).toEqual(expect.any(String));
    const proof = await proofOfPossession('challenge-1', softwareSigner(userKey, 'ES256'));
    const verified = await compactVerify(proof, createPublicKey(userKey));
    expect(Buffer.from(verified.payload).toString()).toBe('challenge-1');
  });

  it('makes requests the shared device-assertion verifier accepts (kid = device id, the device certificate, aud, nonce)', async () => {
    const material = await createDeviceCa({ tenantId: device.tenantId });
    const ca = await DeviceCertificateAuthority.load(material);
    const spki = createPublicKey(deviceKey).export({ type: 'spki', format: 'der' });
    const { certificatePem } = await ca.issue({ ...device, spki, validityDays: 1 });
    const directory = {
      tenantCaCertificate: async (t: string) =>
        t === device.tenantId ? material.certificatePem : null,
      device: async (t: string, d: string) =>
        t === device.tenantId && d === device.deviceId
          ? { status: 'active', certificatePem }
          : null,
    };
    const nonce = randomBytes(32).toString('base64url');
    const signIn = await keySignInRequest(
      device,
      deviceKey,
      credential,
      softwareSigner(userKey, 'ES256'),
      issuer,
      nonce,
    );
    const verified = await new DeviceAssertionVerifier(directory, { audience: issuer }).verify(
      signIn,
      {
        nonce,
      },
    );
    expect(verified).toMatchObject({ tenantId: device.tenantId, deviceId: device.deviceId });
    const forProvisioning = new DeviceAssertionVerifier(directory, {
      audience: 'latchkey-provisioning',
    });
    await expect(
      forProvisioning.verify(await deviceAssertion(device, deviceKey)),
    ).resolves.toMatchObject({
      deviceId: device.deviceId,
    });
    // Signed by another key: refused.
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await expect(forProvisioning.verify(await deviceAssertion(device, stranger))).rejects.toThrow(
      /signature/,
    );
  });
});
