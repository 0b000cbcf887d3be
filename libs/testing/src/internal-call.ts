/**
 * Metadata of a service-to-service call as a latchkey service makes it, for tests
 * that call internal RPCs (GetDevice, GetCredential) directly: a token MACed with
 * the test profile's INTERNAL_CALL_KEYS (the launcher's). It is written here with
 * jose, in the format of service-kit's InternalCallSigner (service-kit's own e2e
 * tests import this library, so it cannot import service-kit); the services'
 * verifier is what checks it, so a drift fails the tests that use it.
 */
import { Metadata } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { launcher, TEST_PROFILE } from './environment';

/** Metadata proving that `caller` (e.g. "auth") calls `callee` (e.g. "registration"). */
export async function internalCall(caller: string, callee: string): Promise<Metadata> {
  const keys = launcher.serviceEnv(callee, TEST_PROFILE).INTERNAL_CALL_KEYS;
  if (!keys) throw new Error('the launcher sets no INTERNAL_CALL_KEYS');
  const [kid, key] = keys.split(',')[0]!.trim().split(':') as [string, string];
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', kid, typ: 'latchkey-internal-call+jwt' })
    .setIssuer(caller)
    .setSubject(caller)
    .setAudience(`latchkey:${callee}`)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new Uint8Array(Buffer.from(key, 'base64')));
  const md = new Metadata();
  md.set('latchkey-internal-call', token);
  return md;
}
