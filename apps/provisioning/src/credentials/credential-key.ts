/**
 * A new user key as submitted for provisioning: JWK parsing with weak-key
 * refusal, the credential id (base64url SHA-256 of the SPKI), and the proof of
 * possession (a compact JWS over the challenge, signed by that key).
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { compactVerify } from 'jose';
import type { KeyAlgorithm } from '../policies/key-policy';

export type KeyRefusalReason = 'malformed_key' | 'weak_key';

/** The submitted key cannot be used; `reason` is the failure-event vocabulary. */
export class KeyRefusal extends Error {
  constructor(
    readonly reason: KeyRefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'KeyRefusal';
  }
}

export interface CredentialKey {
  /** base64url(SHA-256(SPKI DER)): the credential id and `kid`. */
  credentialId: string;
  algorithm: KeyAlgorithm;
  key: KeyObject;
  /** Public members only, normalized. */
  jwk: JsonWebKey;
  spki: Buffer;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const MAX_JWK_LENGTH = 8192;
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 4096;

export function credentialIdOf(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('base64url');
}

/** Parses a JWK (JSON text) for `algorithm`; throws KeyRefusal. */
export function parseCredentialKey(jwkText: string, algorithm: KeyAlgorithm): CredentialKey {
  if (jwkText.length > MAX_JWK_LENGTH)
    throw new KeyRefusal('malformed_key', 'the JWK is too large');
  let jwk: unknown;
  try {
    jwk = JSON.parse(jwkText);
  } catch {
    throw new KeyRefusal('malformed_key', 'the public key is not JSON');
  }
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk))
    throw new KeyRefusal('malformed_key', 'the public key is not a JWK object');
  const j = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in j))
    throw new KeyRefusal('malformed_key', 'the JWK carries private key material');
  if (j.alg !== undefined && j.alg !== algorithm)
    throw new KeyRefusal('malformed_key', `the JWK's alg ${String(j.alg)} is not ${algorithm}`);
  if (j.use !== undefined && j.use !== 'sig')
    throw new KeyRefusal('malformed_key', 'the JWK is not a signature key (use)');
  if (
    j.key_ops !== undefined &&
    !(Array.isArray(j.key_ops) && (j.key_ops as unknown[]).includes('verify'))
  )
    throw new KeyRefusal('malformed_key', 'the JWK is not a signature key (key_ops)');

  const expectedKty = algorithm === 'RS256' ? 'RSA' : 'EC';
  if (j.kty !== expectedKty)
    throw new KeyRefusal('malformed_key', `${algorithm} needs a ${expectedKty} key`);
  const members =
    expectedKty === 'RSA'
      ? { kty: 'RSA', n: j.n, e: j.e }
      : { kty: 'EC', crv: j.crv, x: j.x, y: j.y };
  for (const [k, v] of Object.entries(members))
    if (typeof v !== 'string' || !/^[A-Za-z0-9_-]+$/.test(v))
      throw new KeyRefusal('malformed_key', `the JWK member ${k} is missing or not base64url`);
  if (expectedKty === 'EC' && j.crv !== 'P-256')
    throw new KeyRefusal('weak_key', `ES256 needs the curve P-256 (got ${String(j.crv)})`);

  let key: KeyObject;
  try {
    // Node (OpenSSL) checks that an EC point lies on the curve.
    key = createPublicKey({ key: members as JsonWebKey, format: 'jwk' });
  } catch {
    throw new KeyRefusal('malformed_key', 'the JWK is not a valid public key');
  }
  if (expectedKty === 'RSA') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS)
      throw new KeyRefusal('weak_key', `RSA keys need at least ${RSA_MIN_BITS} bits (got ${bits})`);
    if (bits > RSA_MAX_BITS)
      throw new KeyRefusal('malformed_key', `RSA keys may have at most ${RSA_MAX_BITS} bits`);
    const e = key.asymmetricKeyDetails?.publicExponent ?? 0n;
    if (e < 65537n || e % 2n === 0n)
      throw new KeyRefusal('weak_key', 'the RSA public exponent must be odd and at least 65537');
  }
  const spki = key.export({ type: 'spki', format: 'der' });
  return {
    credentialId: credentialIdOf(spki),
    algorithm,
    key,
    jwk: key.export({ format: 'jwk' }),
    spki,
  };
}

/** True when `proof` is a compact JWS by `key` whose payload is exactly `challenge`. */
export async function verifyProofOfPossession(
  proof: string,
  key: CredentialKey,
  challenge: string,
): Promise<boolean> {
  if (proof.length > 16_384) return false;
  try {
    const { payload } = await compactVerify(proof, key.key, { algorithms: [key.algorithm] });
    return Buffer.from(payload).equals(Buffer.from(challenge, 'utf8'));
  } catch {
    return false;
  }
}
