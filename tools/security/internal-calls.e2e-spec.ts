/**
 * Service-to-service RPCs (registration GetDevice, provisioning GetCredential)
 * are routed to the internet with the rest of the gRPC API, so they must refuse
 * anyone but the deployment's own services: a caller needs a token signed with
 * its own key (INTERNAL_CALL_SIGNING_KEYS), naming itself, addressed to the
 * callee, which trusts that key for that caller only (INTERNAL_CALL_TRUSTED_KEYS).
 * Each case asserts the exact refusal; the last one shows that a rightful caller
 * passes the guard (and gets the lookup's own NOT_FOUND).
 *
 *   LATCHKEY_TEST_PROFILE=<profile> npx jest tools/security/internal-calls --selectProjects e2e
 */
import { randomUUID } from 'node:crypto';
import { status, type ServiceError } from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import {
  grpcAddress,
  grpcClient,
  internalCall,
  internalCallToken,
  Metadata,
  reasonOf,
  type UnaryClient,
  withInternalCallToken as withToken,
} from '@latchkey/testing';

let registration: UnaryClient;
let provisioning: UnaryClient;
beforeAll(() => {
  registration = grpcClient('registration', grpcAddress('registration'));
  provisioning = grpcClient('provisioning', grpcAddress('provisioning'));
});
afterAll(() => {
  registration?.close();
  provisioning?.close();
});

const getDevice = (md?: Metadata) =>
  registration.getDevice!({ tenantId: randomUUID(), deviceId: randomUUID() }, md);
const getCredential = (md?: Metadata) =>
  provisioning.getCredential!({ tenantId: randomUUID(), credentialId: 'k'.repeat(43) }, md);

async function refusal(p: Promise<unknown>): Promise<{ code?: number; reason?: string }> {
  const err = await p.then(
    () => {
      throw new Error('the call was answered');
    },
    (e: unknown) => e as ServiceError,
  );
  return { code: err.code, reason: reasonOf(err) };
}

/** A well-formed internal-call token under a key the deployment does not have (same kid). */
async function foreignToken(caller: string, callee: string): Promise<string> {
  const genuine = await internalCallToken(caller, callee);
  const { kid } = JSON.parse(Buffer.from(genuine.split('.')[0]!, 'base64url').toString()) as {
    kid: string;
  };
  const { privateKey } = await generateKeyPair('EdDSA', { extractable: true });
  expect((await exportJWK(privateKey)).crv).toBe('Ed25519');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'latchkey-internal-call+jwt' })
    .setIssuer(caller)
    .setAudience(`latchkey:${callee}`)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey);
}

describe.each([
  ['registration GetDevice', getDevice, 'registration', 'auth', 'audit'],
  ['provisioning GetCredential', getCredential, 'provisioning', 'auth', 'provisioning'],
] as const)('%s', (_name, call, callee, rightful, untrusted) => {
  it('refuses a caller without an internal-call token (a device, a user, the internet)', async () => {
    expect(await refusal(call())).toEqual({
      code: status.UNAUTHENTICATED,
      reason: 'INTERNAL_CALL_REQUIRED',
    });
    // An access token is not an internal-call token.
    const md = new Metadata();
    md.set('authorization', 'Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln');
    expect(await refusal(call(md))).toEqual({
      code: status.UNAUTHENTICATED,
      reason: 'INTERNAL_CALL_REQUIRED',
    });
  });

  it('refuses a token under a foreign key, for another service, or tampered with', async () => {
    const otherCallee = callee === 'registration' ? 'provisioning' : 'registration';
    const good = (await internalCall(rightful, callee)).get('latchkey-internal-call')[0] as string;
    const [h, , s] = good.split('.');
    const forged = [
      h,
      Buffer.from(
        JSON.stringify({ iss: rightful, aud: `latchkey:${callee}`, iat: 1, exp: 4102444800 }),
      ).toString('base64url'),
      s,
    ].join('.');
    for (const md of [
      withToken(await foreignToken(rightful, callee)),
      await internalCall(rightful, otherCallee),
      withToken(forged),
      withToken('garbage'),
    ]) {
      expect(await refusal(call(md))).toEqual({
        code: status.UNAUTHENTICATED,
        reason: 'INTERNAL_CALL_INVALID',
      });
    }
  });

  it('refuses a latchkey service whose key the callee does not trust', async () => {
    // The callee holds the public keys of its callers only (PERMISSION_DENIED for a trusted
    // caller a handler does not list is covered by libs/service-kit internal-call.spec.ts).
    expect(await refusal(call(await internalCall(untrusted, callee)))).toEqual({
      code: status.UNAUTHENTICATED,
      reason: 'INTERNAL_CALL_INVALID',
    });
  });

  it('refuses a service that signs with its own genuine key but claims to be the rightful caller', async () => {
    // A compromised service holds its own private key, not the rightful caller's.
    for (const impostor of ['registration', 'provisioning', 'audit'].filter(
      (s) => s !== rightful,
    )) {
      const md = withToken(await internalCallToken(impostor, callee, { iss: rightful }));
      expect({ impostor, ...(await refusal(call(md))) }).toEqual({
        impostor,
        code: status.UNAUTHENTICATED,
        reason: 'INTERNAL_CALL_INVALID',
      });
    }
  });

  it('lets the rightful caller through to the lookup itself', async () => {
    const { code } = await refusal(call(await internalCall(rightful, callee)));
    expect(code).toBe(status.NOT_FOUND);
  });
});
