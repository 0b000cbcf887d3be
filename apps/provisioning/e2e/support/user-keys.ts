/** User key material as a device would make it: a key pair, its public JWK and the proof over a challenge. */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';

export interface UserKey {
  algorithm: 'ES256' | 'RS256';
  privateKey: KeyObject;
  publicKeyJwk: string;
  /** base64url SHA-256 of the SPKI: what provisioning must return as the credential id. */
  expectedCredentialId: string;
}

export function newUserKey(algorithm: 'ES256' | 'RS256' = 'ES256', rsaBits = 2048): UserKey {
  const pair =
    algorithm === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: rsaBits });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  return {
    algorithm,
    privateKey: pair.privateKey,
    publicKeyJwk: JSON.stringify(pair.publicKey.export({ format: 'jwk' })),
    expectedCredentialId: createHash('sha256').update(spki).digest('base64url'),
  };
}

/**
 * A compact JWS over `challenge` made with node:crypto directly (not jose, which
 * refuses to sign with the weak keys some tests need).
 */
export async function proofOver(challenge: string, key: UserKey): Promise<string> {
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const input = `${b64(JSON.stringify({ alg: key.algorithm }))}.${b64(challenge)}`;
  const signature = sign('sha256', Buffer.from(input), {
    key: key.privateKey,
    ...(key.algorithm === 'ES256' ? { dsaEncoding: 'ieee-p1363' as const } : {}),
  });
  return `${input}.${signature.toString('base64url')}`;
}
