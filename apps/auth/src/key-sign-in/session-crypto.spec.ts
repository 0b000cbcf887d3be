import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { compactDecrypt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import {
  encryptToTransportKey,
  hashRefreshToken,
  looksLikeRefreshToken,
  newRefreshToken,
  newSessionKey,
  proofKey,
  unwrapSessionKey,
  wrapSessionKey,
} from './session-crypto';

describe('key session cryptography', () => {
  it('makes 256-bit PRTs that are hashed, never equal and recognisable', () => {
    const a = newRefreshToken();
    const b = newRefreshToken();
    expect(a).not.toEqual(b);
    expect(looksLikeRefreshToken(a)).toBe(true);
    expect(looksLikeRefreshToken(a.slice(0, -1))).toBe(false);
    expect(hashRefreshToken(a)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(hashRefreshToken(a)).not.toEqual(hashRefreshToken(b));
  });

  it('wraps the session key so that only the PRT (and the session id) give it back', () => {
    const key = newSessionKey();
    const prt = newRefreshToken();
    const sid = randomUUID();
    const wrapped = wrapSessionKey(key, prt, sid);
    expect(wrapped).not.toContain(key.toString('base64url'));
    expect(unwrapSessionKey(wrapped, prt, sid)).toEqual(key);
    expect(unwrapSessionKey(wrapped, newRefreshToken(), sid)).toBeNull();
    expect(unwrapSessionKey(wrapped, prt, randomUUID())).toBeNull();
    const [v, iv, ct, tag] = wrapped.split('.');
    const flipped = Buffer.from(ct!, 'base64url');
    flipped[0] ^= 1;
    expect(
      unwrapSessionKey([v, iv, flipped.toString('base64url'), tag].join('.'), prt, sid),
    ).toBeNull();
  });

  it.each([
    ['RSA', 'RSA-OAEP-256', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['EC P-256', 'ECDH-ES', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['EC P-384', 'ECDH-ES', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
  ] as const)('encrypts the session key to a %s transport key with %s', async (_n, alg, make) => {
    const { publicKey, privateKey } = make();
    const key = newSessionKey();
    const jwe = await encryptToTransportKey(
      key,
      publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    );
    expect(decodeProtectedHeader(jwe)).toMatchObject({ alg, enc: 'A256GCM' });
    const { plaintext } = await compactDecrypt(jwe, privateKey);
    expect(Buffer.from(plaintext)).toEqual(key);
  });

  it('derives a per-request proof key that verifies only with the same session key and ctx', async () => {
    const key = newSessionKey();
    const ctx = Buffer.alloc(32, 7);
    const proof = await new SignJWT({ nonce: 'n' })
      .setProtectedHeader({ alg: 'HS256', ctx: ctx.toString('base64url') })
      .sign(proofKey(key, ctx));
    await expect(jwtVerify(proof, proofKey(key, ctx))).resolves.toBeDefined();
    await expect(jwtVerify(proof, proofKey(key, Buffer.alloc(32, 8)))).rejects.toThrow();
    await expect(jwtVerify(proof, proofKey(newSessionKey(), ctx))).rejects.toThrow();
  });
});
