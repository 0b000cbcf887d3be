/**
 * The signed messages of the device protocol (ARCHITECTURE.md, "The device
 * protocol"): device assertions, the key sign-in request with its user
 * assertion, the PRT proof keyed from the session key, and the session key's
 * JWE. Pure functions over keys the caller has unlocked.
 */
import { hkdfSync, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { CompactSign, compactDecrypt, SignJWT } from 'jose';

export const PROVISIONING_AUDIENCE = 'latchkey-provisioning';
export const PRT_PROOF_INFO = 'latchkey/prt-proof/v1';
/** How long a user assertion may live (the server accepts at most 300 s). */
const USER_ASSERTION_SECONDS = 120;

export interface DeviceIdentity {
  tenantId: string;
  deviceId: string;
}

/** A device assertion (kid = device id, a fresh jti) for provisioning's BeginProvisioning and DeleteCredential. */
export function deviceAssertion(
  device: DeviceIdentity,
  deviceKey: KeyObject,
  audience = PROVISIONING_AUDIENCE,
): Promise<string> {
  return new SignJWT({ tid: device.tenantId, jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: device.deviceId })
    .setSubject(device.deviceId)
    .setAudience(audience)
    .setIssuedAt()
    .sign(deviceKey);
}

/** Proof of possession of a new user key: a compact JWS whose payload is the challenge. */
export function proofOfPossession(
  challenge: string,
  algorithm: 'ES256' | 'RS256',
  userKey: KeyObject,
): Promise<string> {
  return new CompactSign(new TextEncoder().encode(challenge))
    .setProtectedHeader({ alg: algorithm })
    .sign(userKey);
}

export interface UserCredential {
  userId: string;
  credentialId: string;
  algorithm: 'ES256' | 'RS256';
}

/** The inner assertion, signed by the user key: the nonce is inside what the user signed. */
export function userAssertion(
  credential: UserCredential,
  userKey: KeyObject,
  issuer: string,
  nonce: string,
  now = Math.floor(Date.now() / 1000),
): Promise<string> {
  return new SignJWT({ request_nonce: nonce })
    .setProtectedHeader({ alg: credential.algorithm, kid: credential.credentialId })
    .setIssuer(credential.userId)
    .setAudience(issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + USER_ASSERTION_SECONDS)
    .sign(userKey);
}

/** The key sign-in request: signed by the device key, carrying the user assertion and the same nonce. */
export async function keySignInRequest(
  device: DeviceIdentity,
  deviceKey: KeyObject,
  credential: UserCredential,
  userKey: KeyObject,
  issuer: string,
  nonce: string,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const inner = await userAssertion(credential, userKey, issuer, nonce, now);
  return new SignJWT({ tid: device.tenantId, nonce, user_assertion: inner })
    .setProtectedHeader({ alg: 'ES256', kid: device.deviceId })
    .setSubject(device.deviceId)
    .setAudience(issuer)
    .setIssuedAt(now)
    .sign(deviceKey);
}

/** The HMAC key of one PRT proof: HKDF-SHA256(session key, salt = ctx, info = latchkey/prt-proof/v1). */
export function prtProofKey(sessionKey: Buffer, ctx: Buffer): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', sessionKey, ctx, PRT_PROOF_INFO, 32));
}

/** The proof that goes with a PRT: HS256 over a fresh nonce, keyed from the session key and a fresh ctx. */
export function prtProof(
  device: DeviceIdentity,
  sessionKey: Buffer,
  issuer: string,
  nonce: string,
  ctx: Buffer = randomBytes(32),
): Promise<string> {
  return new SignJWT({ tid: device.tenantId, nonce })
    .setProtectedHeader({ alg: 'HS256', ctx: ctx.toString('base64url') })
    .setSubject(device.deviceId)
    .setAudience(issuer)
    .setIssuedAt()
    .sign(prtProofKey(sessionKey, ctx));
}

/** Decrypts the session key JWE with the transport key; it must be 32 bytes. */
export async function openSessionKey(jwe: string, transportKey: KeyObject): Promise<Buffer> {
  const { plaintext } = await compactDecrypt(jwe, transportKey, {
    keyManagementAlgorithms: ['RSA-OAEP-256', 'ECDH-ES'],
    contentEncryptionAlgorithms: ['A256GCM'],
  });
  if (plaintext.length !== 32) throw new Error('the session key is not 32 bytes');
  return Buffer.from(plaintext);
}

/** The issuer URL (the `aud` of key sign-in and refresh) from auth's OIDC discovery. */
export async function discoverIssuer(authUrl: string): Promise<string> {
  const res = await fetch(`${authUrl.replace(/\/$/, '')}/.well-known/openid-configuration`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`OIDC discovery at ${authUrl} answered ${res.status}`);
  const { issuer } = (await res.json()) as { issuer?: unknown };
  if (typeof issuer !== 'string' || !issuer) throw new Error('OIDC discovery gave no issuer');
  return issuer;
}
