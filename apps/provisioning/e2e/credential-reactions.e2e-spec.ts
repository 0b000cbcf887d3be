/**
 * Credentials follow their user and device: events on latchkey.auth.v1 and
 * latchkey.device.v1 suspend, reactivate and revoke keys, each event once
 * (a redelivered event, same ce_id, changes nothing).
 *
 * User events are published here as auth publishes them (catalogue-validated
 * CloudEvents through the platform's KafkaEventBus), so that redelivery and
 * ordering can be staged exactly.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  createEvent,
  type DomainEvent,
  KafkaEventBus,
  UserDeleted,
  UserDisabled,
  UserEnabled,
} from '@latchkey/events';
import { NonceStore } from '@latchkey/service-kit';
import {
  grpcClient,
  KAFKA_BROKERS,
  launcher,
  Metadata,
  type ExtraService,
  startExtraService,
  TEST_PROFILE,
  type UnaryClient,
  internalCall,
  newUserKey,
  proofOver,
} from '@latchkey/testing';
import { challengeBinding } from '../src/credentials/challenge-binding';
import { CredentialEventLog } from './support/credential-events';
import { TestTokenIssuer } from './support/token-issuer';

let issuer: TestTokenIssuer;
let instance: ExtraService;
let client: UnaryClient;
let redis: Redis;
let nonces: NonceStore;
let bus: KafkaEventBus;
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
  bus = new KafkaEventBus({
    brokers: [KAFKA_BROKERS],
    clientId: `tprov-reactions-${randomUUID()}`,
  });
  await events.start();
});

afterAll(async () => {
  client?.close();
  await bus?.close();
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

/** A user with one provisioned key; returns its ids. */
async function provisionedUser(tenantId = randomUUID()) {
  const userId = randomUUID();
  const deviceId = await aDeviceId(tenantId);
  const key = newUserKey();
  const { nonce } = await nonces.issue(challengeBinding(tenantId, deviceId, userId));
  const md = new Metadata();
  md.set('authorization', `Bearer ${await issuer.token({ sub: userId, tid: tenantId })}`);
  await client.completeProvisioning!(
    {
      deviceId,
      challenge: nonce,
      publicKeyJwk: key.publicKeyJwk,
      algorithm: key.algorithm,
      proofOfPossession: await proofOver(nonce, key),
    },
    md,
  );
  return { tenantId, userId, deviceId, credentialId: key.expectedCredentialId };
}

async function statusOf(c: { tenantId: string; credentialId: string }): Promise<string> {
  const res = await client.getCredential!(
    { tenantId: c.tenantId, credentialId: c.credentialId },
    await internalCall('auth', 'provisioning'),
  );
  return (res.credential as { status: string }).status;
}

/** Polls until the credential has `expected` status; returns how long that took. */
async function becomes(
  c: { tenantId: string; credentialId: string },
  expected: string,
  timeoutMs = 10_000,
): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const s = await statusOf(c);
    if (s === expected) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`status stayed ${s}, expected ${expected}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const publish = (...list: DomainEvent[]) => bus.publish(list);

describe('reactions to user events', () => {
  it('suspends the keys of a disabled user, and reactivates them when the user is enabled', async () => {
    const c = await provisionedUser();
    const ref = { tenantId: c.tenantId, userId: c.userId };
    await publish(createEvent(UserDisabled, c.tenantId, ref));
    expect(await becomes(c, 'CREDENTIAL_STATUS_SUSPENDED')).toBeLessThan(2000);
    await events.waitFor(c.tenantId, 'suspended', {
      credentialId: c.credentialId,
      cause: 'user_disabled',
    });
    await publish(createEvent(UserEnabled, c.tenantId, ref));
    expect(await becomes(c, 'CREDENTIAL_STATUS_ACTIVE')).toBeLessThan(2000);
    await events.waitFor(c.tenantId, 'reactivated', {
      credentialId: c.credentialId,
      cause: 'user_enabled',
    });
  });

  it('ignores a redelivered event: a replayed "disabled" after "enabled" changes nothing', async () => {
    const c = await provisionedUser();
    const ref = { tenantId: c.tenantId, userId: c.userId };
    const disabled = createEvent(UserDisabled, c.tenantId, ref);
    await publish(disabled);
    await becomes(c, 'CREDENTIAL_STATUS_SUSPENDED');
    await publish(createEvent(UserEnabled, c.tenantId, ref));
    await becomes(c, 'CREDENTIAL_STATUS_ACTIVE');
    await publish(disabled); // same ce_id
    // A later event of the same tenant (same partition) proves the replay was consumed.
    const marker = await provisionedUser(c.tenantId);
    await publish(
      createEvent(UserDisabled, marker.tenantId, {
        tenantId: marker.tenantId,
        userId: marker.userId,
      }),
    );
    await becomes(marker, 'CREDENTIAL_STATUS_SUSPENDED');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await statusOf(c)).toBe('CREDENTIAL_STATUS_ACTIVE');
    expect(
      events.of(c.tenantId, 'suspended').filter((e) => e.data.credentialId === c.credentialId),
    ).toHaveLength(1);
  });

  it('revokes the keys of a deleted user for good', async () => {
    const c = await provisionedUser();
    const ref = { tenantId: c.tenantId, userId: c.userId };
    await publish(createEvent(UserDeleted, c.tenantId, ref));
    await becomes(c, 'CREDENTIAL_STATUS_REVOKED');
    await events.waitFor(c.tenantId, 'revoked', {
      credentialId: c.credentialId,
      cause: 'user_deleted',
    });
    await publish(createEvent(UserEnabled, c.tenantId, ref));
    await new Promise((r) => setTimeout(r, 1500));
    expect(await statusOf(c)).toBe('CREDENTIAL_STATUS_REVOKED');
  });

  it("leaves other tenants' keys alone", async () => {
    const c = await provisionedUser();
    const other = randomUUID();
    // Same user id in another tenant: must not touch tenant c's key.
    await publish(createEvent(UserDisabled, other, { tenantId: other, userId: c.userId }));
    const marker = await provisionedUser(other);
    await publish(
      createEvent(UserDisabled, marker.tenantId, {
        tenantId: marker.tenantId,
        userId: marker.userId,
      }),
    );
    await becomes(marker, 'CREDENTIAL_STATUS_SUSPENDED');
    expect(await statusOf(c)).toBe('CREDENTIAL_STATUS_ACTIVE');
  });
});
