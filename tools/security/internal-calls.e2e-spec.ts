/**
 * Service-to-service RPCs (registration GetDevice, provisioning GetCredential)
 * are routed to the internet with the rest of the gRPC API, so they must refuse
 * anyone but the deployment's own services: a caller needs a token MACed with
 * INTERNAL_CALL_KEYS, naming itself, addressed to the callee, from a service the
 * handler serves. Each case asserts the exact refusal; the last one shows that
 * a rightful caller passes the guard (and gets the lookup's own NOT_FOUND).
 *
 *   npx jest tools/security/internal-calls --selectProjects e2e
 */
import { randomUUID } from 'node:crypto';
import { status, type ServiceError } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import {
  grpcAddress,
  grpcClient,
  internalCall,
  Metadata,
  reasonOf,
  type UnaryClient,
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

function withToken(token: string): Metadata {
  const md = new Metadata();
  md.set('latchkey-internal-call', token);
  return md;
}

/** A well-formed internal-call token under a key the deployment does not have. */
async function foreignToken(caller: string, callee: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', kid: 'attacker', typ: 'latchkey-internal-call+jwt' })
    .setIssuer(caller)
    .setAudience(`latchkey:${callee}`)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new Uint8Array(32).fill(7));
}

describe.each([
  ['registration GetDevice', getDevice, 'registration', 'auth', 'audit'],
  ['provisioning GetCredential', getCredential, 'provisioning', 'auth', 'provisioning'],
] as const)('%s', (_name, call, callee, rightful, notServed) => {
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

  it('refuses a latchkey service the handler does not serve', async () => {
    expect(await refusal(call(await internalCall(notServed, callee)))).toEqual({
      code: status.PERMISSION_DENIED,
      reason: 'INTERNAL_CALLER_NOT_ALLOWED',
    });
  });

  it('lets the rightful caller through to the lookup itself', async () => {
    const { code } = await refusal(call(await internalCall(rightful, callee)));
    expect(code).toBe(status.NOT_FOUND);
  });
});
