/**
 * The signed messages of the device protocol (ARCHITECTURE.md, "The device
 * protocol"): device assertions, the key sign-in request with its user
 * assertion, the PRT proof keyed from the session key, and the session key's
 * JWE. Pure functions over keys the caller has unlocked.
 */
import { createDecipheriv, hkdfSync, KeyObject, randomBytes, randomUUID, sign } from 'node:crypto';
import { compactDecrypt, SignJWT } from 'jose';

export const PROVISIONING_AUDIENCE = 'latchkey-provisioning';
/** `aud` of device assertions to registration (its DEVICE_ASSERTION_AUDIENCE default). */
export const REGISTRATION_AUDIENCE = 'latchkey-registration';
export const PRT_PROOF_INFO = 'latchkey/prt-proof/v1';
/** How long a user assertion may live (the server accepts at most 300 s). */
const USER_ASSERTION_SECONDS = 120;

export interface DeviceIdentity {
  tenantId: string;
  deviceId: string;
}

/** The device key: a software key, or a signer whose key lives in a TPM. */
export type DeviceKey = KeyObject | JwsSigner;

/** A device-key JWT (ES256, kid = device id): the claims signed by the device key wherever it lives. */
async function deviceJwt(
  device: DeviceIdentity,
  deviceKey: DeviceKey,
  claims: Record<string, unknown>,
): Promise<string> {
  const signer = deviceKey instanceof KeyObject ? softwareSigner(deviceKey, 'ES256') : deviceKey;
  return compactJws({ kid: device.deviceId }, JSON.stringify(claims), signer);
}

/**
 * A device assertion (kid = device id, a fresh jti): provisioning's BeginProvisioning and
 * DeleteCredential, registration's GetSelfDevice (`audience` REGISTRATION_AUDIENCE).
 */
export function deviceAssertion(
  device: DeviceIdentity,
  deviceKey: DeviceKey,
  audience = PROVISIONING_AUDIENCE,
): Promise<string> {
  return deviceJwt(device, deviceKey, {
    tid: device.tenantId,
    jti: randomUUID(),
    sub: device.deviceId,
    aud: audience,
    iat: Math.floor(Date.now() / 1000),
  });
}

/** Signs JWS signing input with the user key, wherever it lives (software keystore or TPM). */
export interface JwsSigner {
  alg: 'ES256' | 'RS256';
  /** The JWS signature (ES256: r‖s) over `signingInput`. */
  sign(signingInput: Buffer): Promise<Buffer>;
}

export function softwareSigner(key: KeyObject, alg: 'ES256' | 'RS256'): JwsSigner {
  return {
    alg,
    sign: async (input) =>
      sign('sha256', input, alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key),
  };
}

const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url');

async function compactJws(
  header: Record<string, unknown>,
  payload: string,
  signer: JwsSigner,
): Promise<string> {
  const input = `${b64(JSON.stringify({ ...header, alg: signer.alg }))}.${b64(payload)}`;
  return `${input}.${b64(await signer.sign(Buffer.from(input)))}`;
}

/** Proof of possession of a new user key: a compact JWS whose payload is the challenge. */
export function proofOfPossession(challenge: string, signer: JwsSigner): Promise<string> {
  return compactJws({}, challenge, signer);
}

export interface UserCredential {
  userId: string;
  credentialId: string;
  algorithm: 'ES256' | 'RS256';
}

/** The inner assertion, signed by the user key: the nonce is inside what the user signed. */
export function userAssertion(
  credential: UserCredential,
  userKey: JwsSigner,
  issuer: string,
  nonce: string,
  now = Math.floor(Date.now() / 1000),
): Promise<string> {
  return compactJws(
    { kid: credential.credentialId },
    JSON.stringify({
      iss: credential.userId,
      aud: issuer,
      iat: now,
      exp: now + USER_ASSERTION_SECONDS,
      request_nonce: nonce,
    }),
    userKey,
  );
}

/** The key sign-in request: signed by the device key, carrying the user assertion and the same nonce. */
export async function keySignInRequest(
  device: DeviceIdentity,
  deviceKey: DeviceKey,
  credential: UserCredential,
  userKey: JwsSigner,
  issuer: string,
  nonce: string,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const inner = await userAssertion(credential, userKey, issuer, nonce, now);
  return deviceJwt(device, deviceKey, {
    tid: device.tenantId,
    nonce,
    user_assertion: inner,
    sub: device.deviceId,
    aud: issuer,
    iat: now,
  });
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

/** Unwraps a JWE's content-encryption key where the transport key lives (a TPM). */
export interface SessionKeyDecrypter {
  alg: 'RSA-OAEP-256';
  /** The content-encryption key from the JWE's encrypted key. */
  decryptKey(encryptedKey: Buffer): Promise<Buffer>;
}

/**
 * A compact JWE (`decrypter.alg`, A256GCM) opened with a decrypter of its
 * content-encryption key: the key management happens in the TPM, the content
 * decryption (AES-256-GCM, the protected header as AAD) here.
 */
export async function openJwe(jwe: string, decrypter: SessionKeyDecrypter): Promise<Buffer> {
  const parts = jwe.split('.');
  if (parts.length !== 5) throw new Error('the session key JWE is not a compact JWE');
  const [protectedB64, encryptedKey, iv, ciphertext, tag] = parts as [
    string,
    string,
    string,
    string,
    string,
  ];
  let header: { alg?: unknown; enc?: unknown; zip?: unknown; crit?: unknown };
  try {
    header = JSON.parse(Buffer.from(protectedB64, 'base64url').toString('utf8')) as typeof header;
  } catch {
    throw new Error('the session key JWE has no readable protected header');
  }
  if (header.alg !== decrypter.alg || header.enc !== 'A256GCM' || header.zip || header.crit)
    throw new Error(
      `the session key JWE uses ${String(header.alg)}/${String(header.enc)}; the transport key takes ${decrypter.alg}/A256GCM`,
    );
  const cek = await decrypter.decryptKey(Buffer.from(encryptedKey, 'base64url'));
  try {
    if (cek.length !== 32) throw new Error('the content-encryption key is not 256 bits');
    const decipher = createDecipheriv('aes-256-gcm', cek, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(protectedB64, 'ascii'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
  } finally {
    cek.fill(0);
  }
}

/** Decrypts the session key JWE with the transport key (software, or in the TPM); it must be 32 bytes. */
export async function openSessionKey(
  jwe: string,
  transportKey: KeyObject | SessionKeyDecrypter,
): Promise<Buffer> {
  const plaintext =
    transportKey instanceof KeyObject
      ? (
          await compactDecrypt(jwe, transportKey, {
            keyManagementAlgorithms: ['RSA-OAEP-256', 'ECDH-ES'],
            contentEncryptionAlgorithms: ['A256GCM'],
          })
        ).plaintext
      : await openJwe(jwe, transportKey);
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
