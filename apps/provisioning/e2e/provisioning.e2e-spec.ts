/**
 * Provisioning of user keys against the real stack: key policy, the refusals of
 * CompleteProvisioning and BeginProvisioning (each with its failure event),
 * replacement on the same device, the lifecycle, tenant isolation and one
 * challenge raced by 50 requests.
 *
 * Tokens come from a TestTokenIssuer (stale and single-factor tokens included)
 * served to an extra provisioning process of the test profile.
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { NonceStore } from '@latchkey/service-kit';
import {
  grpcClient,
  KAFKA_BROKERS,
  launcher,
  Metadata,
  type ExtraService,
  startExtraService,
  reasonOf,
  TEST_PROFILE,
  type UnaryClient,
  internalCall,
  newUserKey,
  proofOver,
  completeRequest,
  type UserKey,
} from '@latchkey/testing';
import { challengeBinding } from '../src/credentials/challenge-binding';
import { CredentialEventLog } from './support/credential-events';
import { TestTokenIssuer } from './support/token-issuer';

interface ProtoCredential {
  credentialId: string;
  tenantId: string;
  userId: string;
  deviceId: string;
  algorithm: string;
  attestationLevel: string;
  status: string;
  statusReason: string;
  publicKeyJwk: string;
}

let issuer: TestTokenIssuer;
let instance: ExtraService;
let client: UnaryClient;
let redis: Redis;
let nonces: NonceStore;
const events = new CredentialEventLog(KAFKA_BROKERS);

beforeAll(async () => {
  issuer = await TestTokenIssuer.start();
  instance = await startExtraService('provisioning', {
    name: 'test-issuer',
    env: { AUTH_ISSUER: issuer.issuer, AUTH_JWKS_URL: issuer.jwksUrl },
  });
  client = grpcClient('provisioning', instance.grpc);
  redis = new Redis(launcher.serviceEnv('provisioning', TEST_PROFILE).REDIS_URL!);
  nonces = new NonceStore(redis, 300);
  await events.start();
});

afterAll(async () => {
  client?.close();
  await events.stop().catch(() => undefined);
  await instance?.stop();
  await issuer?.close();
  redis?.disconnect();
});

/**
 * A device id for CompleteProvisioning, which trusts the challenge's binding and
 * never asks registration (BeginProvisioning checks real devices: device-bound.e2e-spec.ts).
 */
async function aDeviceId(..._unused: string[]): Promise<string> {
  return Promise.resolve(randomUUID());
}

function auth(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

async function failure(
  p: Promise<unknown>,
): Promise<{ code: number; reason?: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!err) throw new Error('expected the call to fail');
  return {
    code: (err as { code: number }).code,
    reason: reasonOf(err),
    message: (err as Error).message,
  };
}

/** A user of a tenant with tokens of their own. */
class Actor {
  readonly userId = randomUUID();
  constructor(
    readonly tenantId: string,
    readonly roles: string[] = ['user'],
  ) {}
  token(extra: { amr?: string[]; authTime?: number } = {}) {
    return issuer.token({ sub: this.userId, tid: this.tenantId, roles: this.roles, ...extra });
  }
  async md(extra: { amr?: string[]; authTime?: number } = {}) {
    return auth(await this.token(extra));
  }
}

/** A challenge as BeginProvisioning issues it (same store, same binding). */
async function challengeFor(user: Actor, deviceId: string): Promise<string> {
  return (await nonces.issue(challengeBinding(user.tenantId, deviceId, user.userId))).nonce;
}

async function complete(
  user: Actor,
  deviceId: string,
  key: UserKey,
  options: { challenge?: string; proof?: string; friendlyName?: string } = {},
) {
  const challenge = options.challenge ?? (await challengeFor(user, deviceId));
  const res = await client.completeProvisioning!(
    {
      deviceId,
      challenge,
      publicKeyJwk: key.publicKeyJwk,
      algorithm: key.algorithm,
      proofOfPossession: options.proof ?? (await proofOver(challenge, key)),
      friendlyName: options.friendlyName ?? '',
    },
    await user.md(),
  );
  return res as { credential: ProtoCredential; replacedCredentialIds: string[] };
}

async function setPolicy(admin: Actor, patch: Record<string, unknown>) {
  const current = (await client.getKeyPolicy!({ tenantId: admin.tenantId }, await admin.md()))
    .policy as Record<string, unknown>;
  return client.updateKeyPolicy!({ policy: { ...current, ...patch } }, await admin.md());
}

async function listAll(admin: Actor, filter: Record<string, unknown> = {}) {
  const res = await client.listCredentials!(
    { tenantId: admin.tenantId, pageSize: 200, ...filter },
    await admin.md(),
  );
  return res.credentials as ProtoCredential[];
}

describe('tenant key policy', () => {
  it('gives a tenant without a policy the defaults', async () => {
    const user = new Actor(randomUUID());
    const res = await client.getKeyPolicy!({ tenantId: user.tenantId }, await user.md());
    expect(res.policy).toMatchObject({
      tenantId: user.tenantId,
      requireTpm: false,
      allowedAlgorithms: ['ES256', 'RS256'],
      mfaFreshnessSeconds: 600,
      maxKeysPerUserDevice: 1,
      keyLifetimeSeconds: 0,
      updateTime: null,
    });
  });

  it('stores the policy an admin sets and serves it over gRPC and HTTP', async () => {
    const admin = new Actor(randomUUID(), ['admin']);
    await setPolicy(admin, { requireTpm: true, allowedAlgorithms: ['ES256'], maxKeysPerUser: 3 });
    const res = await client.getKeyPolicy!({ tenantId: admin.tenantId }, await admin.md());
    expect(res.policy).toMatchObject({
      requireTpm: true,
      allowedAlgorithms: ['ES256'],
      maxKeysPerUser: 3,
    });
    expect(res.policy).toHaveProperty('updateTime.seconds');
    const http = await fetch(`${instance.http}/v1/tenants/${admin.tenantId}/key-policy`, {
      headers: { authorization: `Bearer ${await admin.token()}` },
    });
    expect(http.status).toBe(200);
    expect(((await http.json()) as { policy: object }).policy).toMatchObject({ requireTpm: true });
  });

  it('refuses an inconsistent policy with its field and changes nothing', async () => {
    const admin = new Actor(randomUUID(), ['admin']);
    const err = await failure(
      setPolicy(admin, { allowedAlgorithms: ['HS256'], mfaFreshnessSeconds: 5 }),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.reason).toBe('INVALID_POLICY');
    expect(err.message).toMatch(/allowedAlgorithms/);
    expect(err.message).toMatch(/mfaFreshnessSeconds/);
    const res = await client.getKeyPolicy!({ tenantId: admin.tenantId }, await admin.md());
    expect(res.policy).toMatchObject({ updateTime: null });
  });

  it('lets only admins change it, and only in their own tenant', async () => {
    const user = new Actor(randomUUID());
    expect(reasonOf(await setPolicy(user, {}).catch((e: unknown) => e))).toBe('ROLE_REQUIRED');
    const otherAdmin = new Actor(randomUUID(), ['admin']);
    const err = await failure(
      client.getKeyPolicy!({ tenantId: user.tenantId }, await otherAdmin.md()),
    );
    expect(err.reason).toBe('TENANT_MISMATCH');
    const anonymous = await failure(client.getKeyPolicy!({ tenantId: user.tenantId }));
    expect(anonymous.code).toBe(status.UNAUTHENTICATED);
  });
});

describe('CompleteProvisioning', () => {
  it('stores an ES256 key with the SPKI thumbprint as its id and publishes credential.provisioned', async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId(user.tenantId);
    const key = newUserKey('ES256');
    const { credential } = await complete(user, deviceId, key, { friendlyName: 'work laptop' });
    expect(credential).toMatchObject({
      credentialId: key.expectedCredentialId,
      tenantId: user.tenantId,
      userId: user.userId,
      deviceId,
      algorithm: 'ES256',
      attestationLevel: 'ATTESTATION_LEVEL_SOFTWARE',
      status: 'CREDENTIAL_STATUS_ACTIVE',
    });
    expect(JSON.parse(credential.publicKeyJwk)).not.toHaveProperty('d');
    const event = await events.waitFor(user.tenantId, 'provisioned', {
      credentialId: key.expectedCredentialId,
    });
    expect(event.data).toMatchObject({
      userId: user.userId,
      deviceId,
      algorithm: 'ES256',
      attestationLevel: 'software',
    });
    const got = await client.getCredential!(
      { tenantId: user.tenantId, credentialId: key.expectedCredentialId },
      await internalCall('auth', 'provisioning'),
    );
    expect(got.credential).toMatchObject({
      status: 'CREDENTIAL_STATUS_ACTIVE',
      userId: user.userId,
    });
  });

  it('stores an RS256 key of 2048 bits', async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId(user.tenantId);
    const key = newUserKey('RS256');
    const { credential } = await complete(user, deviceId, key);
    expect(credential.algorithm).toBe('RS256');
  });

  it('replaces the older key on the same device (destructive PIN reset) and revokes it', async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId(user.tenantId);
    const first = newUserKey();
    await complete(user, deviceId, first);
    const second = newUserKey();
    const res = await complete(user, deviceId, second);
    expect(res.replacedCredentialIds).toEqual([first.expectedCredentialId]);
    const old = await client.getCredential!(
      { tenantId: user.tenantId, credentialId: first.expectedCredentialId },
      await internalCall('auth', 'provisioning'),
    );
    expect(old.credential).toMatchObject({
      status: 'CREDENTIAL_STATUS_REVOKED',
      statusReason: 'replaced',
    });
    await events.waitFor(user.tenantId, 'revoked', {
      credentialId: first.expectedCredentialId,
      cause: 'replaced',
    });
  });

  it('lets a user hold keys on several devices', async () => {
    const user = new Actor(randomUUID());
    const a = await aDeviceId(user.tenantId, 'a');
    const b = await aDeviceId(user.tenantId, 'b');
    await complete(user, a, newUserKey());
    const res = await complete(user, b, newUserKey());
    expect(res.replacedCredentialIds).toEqual([]);
    const admin = new Actor(user.tenantId, ['admin']);
    expect(await listAll(admin, { status: 'CREDENTIAL_STATUS_ACTIVE' })).toHaveLength(2);
  });

  describe('refusals: a clear reason, nothing stored, a provisioning_failed event', () => {
    async function expectRefusal(
      user: Actor,
      call: Promise<unknown>,
      expected: { code: number; reason: string; event: string },
    ) {
      const err = await failure(call);
      expect({ code: err.code, reason: err.reason }).toEqual({
        code: expected.code,
        reason: expected.reason,
      });
      await events.waitFor(user.tenantId, 'provisioning_failed', {
        userId: user.userId,
        reason: expected.event,
      });
      const admin = new Actor(user.tenantId, ['admin']);
      expect(
        await listAll(admin, { userId: user.userId, status: 'CREDENTIAL_STATUS_ACTIVE' }),
      ).toEqual([]);
    }

    it('refuses a proof over another challenge', async () => {
      const user = new Actor(randomUUID());
      const deviceId = await aDeviceId(user.tenantId);
      const key = newUserKey();
      const challenge = await challengeFor(user, deviceId);
      const other = await challengeFor(user, deviceId);
      await expectRefusal(
        user,
        complete(user, deviceId, key, { challenge, proof: await proofOver(other, key) }),
        { code: status.INVALID_ARGUMENT, reason: 'BAD_PROOF', event: 'bad_proof' },
      );
    });

    it('refuses a proof signed by another key', async () => {
      const user = new Actor(randomUUID());
      const deviceId = await aDeviceId(user.tenantId);
      const challenge = await challengeFor(user, deviceId);
      await expectRefusal(
        user,
        complete(user, deviceId, newUserKey(), {
          challenge,
          proof: await proofOver(challenge, newUserKey()),
        }),
        { code: status.INVALID_ARGUMENT, reason: 'BAD_PROOF', event: 'bad_proof' },
      );
    });

    it('refuses a malformed JWS', async () => {
      const user = new Actor(randomUUID());
      const deviceId = await aDeviceId(user.tenantId);
      await expectRefusal(user, complete(user, deviceId, newUserKey(), { proof: 'not.a.jws' }), {
        code: status.INVALID_ARGUMENT,
        reason: 'BAD_PROOF',
        event: 'bad_proof',
      });
    });

    it('refuses a reused challenge', async () => {
      const user = new Actor(randomUUID());
      const deviceId = await aDeviceId(user.tenantId);
      const challenge = await challengeFor(user, deviceId);
      await complete(user, deviceId, newUserKey(), { challenge });
      const second = newUserKey();
      const err = await failure(complete(user, deviceId, second, { challenge }));
      expect({ code: err.code, reason: err.reason }).toEqual({
        code: status.FAILED_PRECONDITION,
        reason: 'CHALLENGE_UNKNOWN_OR_USED',
      });
      await events.waitFor(user.tenantId, 'provisioning_failed', {
        userId: user.userId,
        reason: 'challenge_unknown_or_used',
      });
      const lookup = await failure(
        client.getCredential!(
          { tenantId: user.tenantId, credentialId: second.expectedCredentialId },
          await internalCall('auth', 'provisioning'),
        ),
      );
      expect(lookup.code).toBe(status.NOT_FOUND);
    });

    it("refuses another user's challenge, and an unknown one", async () => {
      const user = new Actor(randomUUID());
      const other = new Actor(user.tenantId);
      const deviceId = await aDeviceId(user.tenantId);
      const challenge = await challengeFor(other, deviceId);
      await expectRefusal(user, complete(user, deviceId, newUserKey(), { challenge }), {
        code: status.FAILED_PRECONDITION,
        reason: 'CHALLENGE_UNKNOWN_OR_USED',
        event: 'challenge_unknown_or_used',
      });
      const unknown = 'A'.repeat(43);
      const err = await failure(complete(user, deviceId, newUserKey(), { challenge: unknown }));
      expect(err.reason).toBe('CHALLENGE_UNKNOWN_OR_USED');
    });

    it('refuses a weak RSA key (1024 bits)', async () => {
      const user = new Actor(randomUUID());
      const deviceId = await aDeviceId(user.tenantId);
      await expectRefusal(user, complete(user, deviceId, newUserKey('RS256', 1024)), {
        code: status.INVALID_ARGUMENT,
        reason: 'WEAK_KEY',
        event: 'weak_key',
      });
    });

    it('refuses a malformed JWK and a JWK with private members', async () => {
      const user = new Actor(randomUUID());
      const deviceId = await aDeviceId(user.tenantId);
      const key = newUserKey();
      await expectRefusal(
        user,
        complete(user, deviceId, { ...key, publicKeyJwk: '{"kty":"EC","crv":"P-256"}' }),
        { code: status.INVALID_ARGUMENT, reason: 'MALFORMED_KEY', event: 'malformed_key' },
      );
      const withPrivate = JSON.stringify(key.privateKey.export({ format: 'jwk' }));
      const err = await failure(complete(user, deviceId, { ...key, publicKeyJwk: withPrivate }));
      expect(err.reason).toBe('MALFORMED_KEY');
    });

    it('refuses an algorithm the policy does not allow', async () => {
      const admin = new Actor(randomUUID(), ['admin']);
      await setPolicy(admin, { allowedAlgorithms: ['ES256'] });
      const user = new Actor(admin.tenantId);
      const deviceId = await aDeviceId(user.tenantId);
      await expectRefusal(user, complete(user, deviceId, newUserKey('RS256')), {
        code: status.FAILED_PRECONDITION,
        reason: 'ALGORITHM_NOT_ALLOWED',
        event: 'algorithm_not_allowed',
      });
    });

    it('refuses a software key when the policy requires TPM', async () => {
      const admin = new Actor(randomUUID(), ['admin']);
      await setPolicy(admin, { requireTpm: true });
      const user = new Actor(admin.tenantId);
      const deviceId = await aDeviceId(user.tenantId);
      await expectRefusal(user, complete(user, deviceId, newUserKey()), {
        code: status.FAILED_PRECONDITION,
        reason: 'POLICY_TPM_REQUIRED',
        event: 'policy_tpm_required',
      });
    });

    it('refuses a key beyond the per-user limit', async () => {
      const admin = new Actor(randomUUID(), ['admin']);
      await setPolicy(admin, { maxKeysPerUser: 1 });
      const user = new Actor(admin.tenantId);
      const a = await aDeviceId(user.tenantId, 'a');
      const b = await aDeviceId(user.tenantId, 'b');
      await complete(user, a, newUserKey());
      const err = await failure(complete(user, b, newUserKey()));
      expect({ code: err.code, reason: err.reason }).toEqual({
        code: status.FAILED_PRECONDITION,
        reason: 'KEY_LIMIT',
      });
      await events.waitFor(user.tenantId, 'provisioning_failed', { reason: 'key_limit' });
      expect(await listAll(admin, { deviceId: b })).toEqual([]);
    });

    it('refuses a key beyond the per-device limit (across users)', async () => {
      const admin = new Actor(randomUUID(), ['admin']);
      await setPolicy(admin, { maxKeysPerDevice: 1 });
      const deviceId = await aDeviceId(admin.tenantId);
      await complete(new Actor(admin.tenantId), deviceId, newUserKey());
      const second = new Actor(admin.tenantId);
      await expectRefusal(second, complete(second, deviceId, newUserKey()), {
        code: status.FAILED_PRECONDITION,
        reason: 'KEY_LIMIT',
        event: 'key_limit',
      });
    });
  });

  it('completes one challenge raced by 50 parallel requests exactly once', async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId(user.tenantId);
    const challenge = await challengeFor(user, deviceId);
    const md = await user.md();
    const attempts = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const key = newUserKey();
        return client.completeProvisioning!(
          await completeRequest(deviceId, challenge, key),
          md,
        ).then(
          () => 'ok',
          (e: unknown) => reasonOf(e),
        );
      }),
    );
    expect(attempts.filter((a) => a === 'ok')).toHaveLength(1);
    expect(attempts.filter((a) => a === 'CHALLENGE_UNKNOWN_OR_USED')).toHaveLength(49);
    const admin = new Actor(user.tenantId, ['admin']);
    expect(await listAll(admin)).toHaveLength(1);
  });
});

describe('BeginProvisioning', () => {
  it('refuses a token without a second factor (mfa_missing)', async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId(user.tenantId);
    const err = await failure(
      client.beginProvisioning!(
        { deviceId, deviceAssertion: 'x' },
        await user.md({ amr: ['pwd'] }),
      ),
    );
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: status.UNAUTHENTICATED,
      reason: 'MFA_MISSING',
    });
    await events.waitFor(user.tenantId, 'provisioning_failed', {
      userId: user.userId,
      stage: 'begin',
      reason: 'mfa_missing',
    });
  });

  it("refuses a second factor older than the tenant's window (mfa_stale)", async () => {
    const admin = new Actor(randomUUID(), ['admin']);
    await setPolicy(admin, { mfaFreshnessSeconds: 120 });
    const user = new Actor(admin.tenantId);
    const deviceId = await aDeviceId(user.tenantId);
    const stale = await user.md({ authTime: Math.floor(Date.now() / 1000) - 180 });
    const err = await failure(client.beginProvisioning!({ deviceId, deviceAssertion: 'x' }, stale));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: status.UNAUTHENTICATED,
      reason: 'MFA_STALE',
    });
    await events.waitFor(user.tenantId, 'provisioning_failed', { reason: 'mfa_stale' });
  });

  it("refuses a device that is not in the caller's tenant (device_tenant_mismatch)", async () => {
    const user = new Actor(randomUUID());
    const foreignDevice = await aDeviceId(randomUUID());
    const err = await failure(
      client.beginProvisioning!({ deviceId: foreignDevice, deviceAssertion: 'x' }, await user.md()),
    );
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: status.PERMISSION_DENIED,
      reason: 'DEVICE_TENANT_MISMATCH',
    });
    await events.waitFor(user.tenantId, 'provisioning_failed', {
      deviceId: foreignDevice,
      reason: 'device_tenant_mismatch',
    });
  });

  it('fails closed with UNAVAILABLE when registration cannot be reached', async () => {
    const lonely = await startExtraService('provisioning', {
      name: 'no-registration',
      env: {
        AUTH_ISSUER: issuer.issuer,
        AUTH_JWKS_URL: issuer.jwksUrl,
        REGISTRATION_GRPC_ADDRESS: '127.0.0.1:9',
        REGISTRATION_TIMEOUT_MS: '500',
      },
    });
    const c = grpcClient('provisioning', lonely.grpc);
    try {
      const user = new Actor(randomUUID());
      const err = await failure(
        c.beginProvisioning!({ deviceId: randomUUID(), deviceAssertion: 'x' }, await user.md()),
      );
      expect({ code: err.code, reason: err.reason }).toEqual({
        code: status.UNAVAILABLE,
        reason: 'REGISTRATION_UNAVAILABLE',
      });
    } finally {
      c.close();
      await lonely.stop();
    }
  });
});

describe('credential lifecycle', () => {
  it("lists a user's own keys and refuses them another user's", async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId(user.tenantId);
    const key = newUserKey();
    await complete(user, deviceId, key);
    const own = await client.listCredentials!({ tenantId: user.tenantId }, await user.md());
    expect((own.credentials as ProtoCredential[]).map((c) => c.credentialId)).toEqual([
      key.expectedCredentialId,
    ]);
    const other = new Actor(user.tenantId);
    const err = await failure(
      client.listCredentials!({ tenantId: user.tenantId, userId: user.userId }, await other.md()),
    );
    expect(err.reason).toBe('ROLE_REQUIRED');
    expect(
      (await client.listCredentials!({ tenantId: user.tenantId }, await other.md())).credentials,
    ).toEqual([]);
  });

  it('pages through an admin listing with a cursor, newest first, filtered by device', async () => {
    const admin = new Actor(randomUUID(), ['admin']);
    const deviceId = await aDeviceId(admin.tenantId);
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const key = newUserKey();
      await complete(new Actor(admin.tenantId), deviceId, key);
      made.push(key.expectedCredentialId);
    }
    await complete(new Actor(admin.tenantId), await aDeviceId(admin.tenantId), newUserKey());
    const seen: string[] = [];
    let pageToken = '';
    do {
      const page = await client.listCredentials!(
        { tenantId: admin.tenantId, deviceId, pageSize: 2, pageToken },
        await admin.md(),
      );
      seen.push(...(page.credentials as ProtoCredential[]).map((c) => c.credentialId));
      pageToken = page.nextPageToken as string;
    } while (pageToken);
    expect(seen).toEqual([...made].reverse());
  });

  it('lets a user with a fresh second factor revoke their key, recording the reason', async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId(user.tenantId);
    const key = newUserKey();
    await complete(user, deviceId, key);
    const stale = await user.md({ authTime: Math.floor(Date.now() / 1000) - 3600 });
    const req = { tenantId: user.tenantId, credentialId: key.expectedCredentialId, reason: 'lost' };
    expect((await failure(client.revokeCredential!(req, stale))).reason).toBe('MFA_STALE');
    const res = await client.revokeCredential!(req, await user.md());
    expect(res.credential).toMatchObject({
      status: 'CREDENTIAL_STATUS_REVOKED',
      statusReason: 'lost',
    });
    await events.waitFor(user.tenantId, 'revoked', {
      credentialId: key.expectedCredentialId,
      cause: 'user',
      reason: 'lost',
    });
  });

  it("lets an admin revoke a user's key but not another tenant's", async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId(user.tenantId);
    const key = newUserKey();
    await complete(user, deviceId, key);
    const req = {
      tenantId: user.tenantId,
      credentialId: key.expectedCredentialId,
      reason: 'offboarding',
    };
    const foreignAdmin = new Actor(randomUUID(), ['admin']);
    expect((await failure(client.revokeCredential!(req, await foreignAdmin.md()))).reason).toBe(
      'TENANT_MISMATCH',
    );
    const notFound = await failure(
      client.revokeCredential!(
        { ...req, tenantId: foreignAdmin.tenantId },
        await foreignAdmin.md(),
      ),
    );
    expect(notFound.code).toBe(status.NOT_FOUND);
    const admin = new Actor(user.tenantId, ['admin']);
    const res = await client.revokeCredential!(req, await admin.md());
    expect(res.credential).toMatchObject({ status: 'CREDENTIAL_STATUS_REVOKED' });
    await events.waitFor(user.tenantId, 'revoked', {
      credentialId: key.expectedCredentialId,
      cause: 'admin',
      actorId: admin.userId,
    });
  });

  it("GetCredential never answers for another tenant's key", async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId(user.tenantId);
    const key = newUserKey();
    await complete(user, deviceId, key);
    const err = await failure(
      client.getCredential!(
        { tenantId: randomUUID(), credentialId: key.expectedCredentialId },
        await internalCall('auth', 'provisioning'),
      ),
    );
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: status.NOT_FOUND,
      reason: 'CREDENTIAL_NOT_FOUND',
    });
  });
});

describe('HTTPS JSON face', () => {
  async function http(method: string, path: string, token: string, body?: unknown) {
    const res = await fetch(`${instance.http}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      type: res.headers.get('content-type') ?? '',
      body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
    };
  }

  it('provisions, lists and revokes over HTTP with the gRPC semantics', async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId();
    const key = newUserKey();
    const challenge = await challengeFor(user, deviceId);
    const token = await user.token();
    const created = await http('POST', '/v1/credentials', token, {
      deviceId,
      challenge,
      publicKeyJwk: JSON.parse(key.publicKeyJwk) as object,
      algorithm: 'ES256',
      proofOfPossession: await proofOver(challenge, key),
    });
    expect(created.status).toBe(201);
    expect(created.body.credential).toMatchObject({ credentialId: key.expectedCredentialId });
    const listed = await http(
      'GET',
      `/v1/tenants/${user.tenantId}/credentials?status=active`,
      token,
    );
    expect((listed.body.credentials as ProtoCredential[]).map((c) => c.credentialId)).toEqual([
      key.expectedCredentialId,
    ]);
    const revoked = await http(
      'POST',
      `/v1/tenants/${user.tenantId}/credentials/${key.expectedCredentialId}/revoke`,
      token,
      { reason: 'replaced laptop' },
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body.credential).toMatchObject({ status: 'CREDENTIAL_STATUS_REVOKED' });
  });

  it('answers a refusal with problem+json and the same reason', async () => {
    const user = new Actor(randomUUID());
    const deviceId = await aDeviceId();
    const key = newUserKey();
    const res = await http('POST', '/v1/credentials', await user.token(), {
      deviceId,
      challenge: 'A'.repeat(43),
      publicKeyJwk: key.publicKeyJwk,
      algorithm: 'ES256',
      proofOfPossession: await proofOver('A'.repeat(43), key),
    });
    expect(res.status).toBe(412);
    expect(res.type).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ reason: 'CHALLENGE_UNKNOWN_OR_USED', status: 412 });
  });
});
