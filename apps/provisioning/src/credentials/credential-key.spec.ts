import { createHash, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { CompactSign } from 'jose';
import { KeyRefusal, parseCredentialKey, verifyProofOfPossession } from './credential-key';

function ecKey() {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

function jwkOf(pair: ReturnType<typeof ecKey>): JsonWebKey {
  return pair.publicKey.export({ format: 'jwk' });
}

function refusal(fn: () => unknown): KeyRefusal {
  try {
    fn();
  } catch (err) {
    if (err instanceof KeyRefusal) return err;
    throw err;
  }
  throw new Error('expected a KeyRefusal');
}

async function sign(payload: string, pair: ReturnType<typeof ecKey>, alg = 'ES256') {
  return new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg })
    .sign(pair.privateKey);
}

describe('parseCredentialKey', () => {
  it('makes the credential id from the SHA-256 of the SPKI, base64url', () => {
    const pair = ecKey();
    const parsed = parseCredentialKey(JSON.stringify(jwkOf(pair)), 'ES256');
    const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
    expect(parsed.credentialId).toBe(createHash('sha256').update(spki).digest('base64url'));
    expect(parsed.credentialId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(parsed.jwk).toEqual({ kty: 'EC', crv: 'P-256', x: jwkOf(pair).x, y: jwkOf(pair).y });
  });

  it('accepts RSA 2048 for RS256', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const parsed = parseCredentialKey(JSON.stringify(publicKey.export({ format: 'jwk' })), 'RS256');
    expect(parsed.algorithm).toBe('RS256');
  });

  it('refuses RSA keys shorter than 2048 bits as weak', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = JSON.stringify(publicKey.export({ format: 'jwk' }));
    expect(refusal(() => parseCredentialKey(jwk, 'RS256')).reason).toBe('weak_key');
  });

  it('refuses an RSA public exponent of 3 as weak', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
    const jwk = JSON.stringify(publicKey.export({ format: 'jwk' }));
    expect(refusal(() => parseCredentialKey(jwk, 'RS256')).reason).toBe('weak_key');
  });

  it('refuses other curves for ES256', () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    const jwk = JSON.stringify(pair.publicKey.export({ format: 'jwk' }));
    expect(refusal(() => parseCredentialKey(jwk, 'ES256')).reason).toBe('weak_key');
  });

  it('refuses an EC point that is not on the curve', () => {
    const jwk = jwkOf(ecKey());
    const x = Buffer.from(jwk.x!, 'base64url');
    x[5] = x[5]! ^ 0xff;
    const bad = JSON.stringify({ ...jwk, x: x.toString('base64url') });
    expect(refusal(() => parseCredentialKey(bad, 'ES256')).reason).toBe('malformed_key');
  });

  it.each([
    ['not JSON', 'nope'],
    ['an array', '[]'],
    ['a private key', JSON.stringify(ecKey().privateKey.export({ format: 'jwk' }))],
    ['a key of the wrong type for the algorithm', JSON.stringify(jwkOf(ecKey()))],
    ['an encryption key', JSON.stringify({ ...jwkOf(ecKey()), use: 'enc' })],
    ['missing members', JSON.stringify({ kty: 'EC', crv: 'P-256' })],
  ])('refuses %s as malformed', (_what, text) => {
    const alg = _what.startsWith('a key of the wrong type') ? 'RS256' : 'ES256';
    expect(refusal(() => parseCredentialKey(text, alg)).reason).toBe('malformed_key');
  });
});

describe('verifyProofOfPossession', () => {
  const challenge = 'q3U9mE0oKkq2yQ2R1bqg7H8b1Xh2vQ3b1Yc4fZ5aB6c';

  it('accepts a JWS over the challenge signed by the key', async () => {
    const pair = ecKey();
    const key = parseCredentialKey(JSON.stringify(jwkOf(pair)), 'ES256');
    expect(await verifyProofOfPossession(await sign(challenge, pair), key, challenge)).toBe(true);
  });

  it('refuses a JWS over another challenge', async () => {
    const pair = ecKey();
    const key = parseCredentialKey(JSON.stringify(jwkOf(pair)), 'ES256');
    const proof = await sign(`${challenge}x`, pair);
    expect(await verifyProofOfPossession(proof, key, challenge)).toBe(false);
  });

  it('refuses a JWS signed by another key', async () => {
    const key = parseCredentialKey(JSON.stringify(jwkOf(ecKey())), 'ES256');
    expect(await verifyProofOfPossession(await sign(challenge, ecKey()), key, challenge)).toBe(
      false,
    );
  });

  it('refuses garbage and unsigned (alg none) tokens', async () => {
    const key = parseCredentialKey(JSON.stringify(jwkOf(ecKey())), 'ES256');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(challenge).toString('base64url')}.`;
    expect(await verifyProofOfPossession(none, key, challenge)).toBe(false);
    expect(await verifyProofOfPossession('a.b.c', key, challenge)).toBe(false);
  });
});
