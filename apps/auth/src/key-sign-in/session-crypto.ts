/**
 * The cryptography of key sessions, apart from the service so it can be tested
 * on its own:
 * - the PRT: 32 random bytes, base64url; stored as SHA-256 only;
 * - the session key: 32 random bytes, sent once as a JWE to the device's
 *   transport key, kept only wrapped (AES-256-GCM) under a key derived from
 *   the PRT — the database alone gives back neither;
 * - the refresh proof key: HKDF-SHA256(session key, salt = per-request ctx).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { CompactEncrypt } from 'jose';

const PRT_PREFIX = 'lkprt1.';
export const PROOF_KEY_INFO = 'latchkey/prt-proof/v1';
const WRAP_INFO = 'latchkey/prt/session-key-wrap/v1';

export function newRefreshToken(): string {
  return PRT_PREFIX + randomBytes(32).toString('base64url');
}

/** True when `token` has the shape of a PRT (cheap check before hashing). */
export function looksLikeRefreshToken(token: string): boolean {
  return /^lkprt1\.[A-Za-z0-9_-]{43}$/.test(token);
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export function newSessionKey(): Buffer {
  return randomBytes(32);
}

function wrapKey(refreshToken: string, sessionId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', refreshToken, sessionId, WRAP_INFO, 32));
}

/** The session key sealed under HKDF(PRT): "v1.<iv>.<ciphertext>.<tag>" (base64url). */
export function wrapSessionKey(sessionKey: Buffer, refreshToken: string, sessionId: string) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', wrapKey(refreshToken, sessionId), iv);
  cipher.setAAD(Buffer.from(sessionId));
  const ct = Buffer.concat([cipher.update(sessionKey), cipher.final()]);
  return ['v1', iv, ct, cipher.getAuthTag()]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.');
}

/** The session key, or null when `refreshToken` is not the one it was wrapped with. */
export function unwrapSessionKey(
  wrapped: string,
  refreshToken: string,
  sessionId: string,
): Buffer | null {
  const [v, iv, ct, tag] = wrapped.split('.');
  if (v !== 'v1' || !iv || !ct || !tag) return null;
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      wrapKey(refreshToken, sessionId),
      Buffer.from(iv, 'base64url'),
    );
    decipher.setAAD(Buffer.from(sessionId));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
  } catch {
    return null;
  }
}

/** The HS256 key of one refresh proof: HKDF-SHA256(session key, salt = ctx). */
export function proofKey(sessionKey: Buffer, ctx: Buffer): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', sessionKey, ctx, PROOF_KEY_INFO, 32));
}

/** The JWE algorithm for a transport key: RSA-OAEP-256 for RSA, ECDH-ES for EC. */
export function transportAlgorithm(key: KeyObject): 'RSA-OAEP-256' | 'ECDH-ES' {
  if (key.asymmetricKeyType === 'rsa') return 'RSA-OAEP-256';
  if (key.asymmetricKeyType === 'ec') return 'ECDH-ES';
  throw new Error(`unsupported transport key type ${String(key.asymmetricKeyType)}`);
}

/** The session key as a compact JWE (A256GCM) to the device's transport key (SPKI PEM or imported). */
export async function encryptToTransportKey(
  sessionKey: Buffer,
  transportPublicKey: string | KeyObject,
  header: { kid?: string } = {},
): Promise<string> {
  const key =
    typeof transportPublicKey === 'string'
      ? createPublicKey(transportPublicKey)
      : transportPublicKey;
  return new CompactEncrypt(sessionKey)
    .setProtectedHeader({
      alg: transportAlgorithm(key),
      enc: 'A256GCM',
      cty: 'latchkey-session-key',
      ...header,
    })
    .encrypt(key);
}
