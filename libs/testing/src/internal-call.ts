/**
 * Metadata of a service-to-service call as a latchkey service makes it, for tests
 * that call internal RPCs (GetDevice, GetCredential) directly: a token signed with
 * the caller's own Ed25519 key as the launcher derives it for the test profile
 * (the callee trusts exactly that public key). It is written here with jose, in the
 * format of service-kit's InternalCallSigner (service-kit's own e2e tests import
 * this library, so it cannot import service-kit); the services' verifier is what
 * checks it, so a drift fails the tests that use it.
 */
import { Metadata } from '@grpc/grpc-js';
import { importJWK, type JWK, SignJWT } from 'jose';
import { launcher } from './environment';

/** Claims of an internal-call token that a test may change (to forge one). */
export interface InternalCallClaims {
  /** The `iss` (and `sub`) the token claims; by default the signing service. */
  iss?: string;
}

/**
 * A token `signer` (e.g. "auth") signs with its launcher-derived key for `callee`
 * (e.g. "registration"); `claims.iss` lets a test claim to be another service.
 */
export async function internalCallToken(
  signer: string,
  callee: string,
  claims: InternalCallClaims = {},
): Promise<string> {
  const [jwk] = (JSON.parse(launcher.localInternalCallSigningKeys(signer)) as { keys: JWK[] }).keys;
  if (!jwk?.kid) throw new Error(`the launcher derives no internal-call key for ${signer}`);
  const iss = claims.iss ?? signer;
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid, typ: 'latchkey-internal-call+jwt' })
    .setIssuer(iss)
    .setSubject(iss)
    .setAudience(`latchkey:${callee}`)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(await importJWK(jwk, 'EdDSA'));
}

/** Metadata carrying an internal-call token. */
export function withInternalCallToken(token: string): Metadata {
  const md = new Metadata();
  md.set('latchkey-internal-call', token);
  return md;
}

/** Metadata proving that `caller` (e.g. "auth") calls `callee` (e.g. "registration"). */
export async function internalCall(caller: string, callee: string): Promise<Metadata> {
  return withInternalCallToken(await internalCallToken(caller, callee));
}
