/**
 * Provisioning with real devices of registration: BeginProvisioning with a
 * device assertion (the shared verifier), the whole Begin → Complete flow,
 * keys following their device (disable → suspended within 2 s, enable →
 * active, delete → revoked), the device deleting its own key, and a
 * TPM-resident user key attested by swtpm.
 *
 * One token issuer (with chosen amr/auth_time) is trusted by an extra
 * registration and an extra provisioning instance of the test profile.
 */
import { createHash, createPublicKey, randomUUID, webcrypto } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import {
  createEvent,
  KafkaEventBus,
  TenantCreated,
  UserDisabled,
  UserEnabled,
} from '@latchkey/events';
import {
  type AssertingDevice,
  deviceAssertion,
  EC,
  enrolDevice as enrol,
  type ExtraService,
  grpcClient,
  KAFKA_BROKERS,
  Metadata,
  reasonOf,
  SoftwareTpm,
  startExtraService,
  tpmRootAndAikCertificate,
  type UnaryClient,
  internalCall,
  newUserKey,
  provisionKey,
  type UserKey,
  waitForDeviceCa,
} from '@latchkey/testing';
import { ecdsaDerToJose } from '@latchkey/tpm';
import { CredentialEventLog } from './support/credential-events';
import { TestTokenIssuer } from './support/token-issuer';

let issuer: TestTokenIssuer;
let registrationInstance: ExtraService;
let provisioningInstance: ExtraService;
let registration: UnaryClient;
let provisioning: UnaryClient;
let bus: KafkaEventBus;
const events = new CredentialEventLog(KAFKA_BROKERS);

beforeAll(async () => {
  issuer = await TestTokenIssuer.start();
  const env = { AUTH_ISSUER: issuer.issuer, AUTH_JWKS_URL: issuer.jwksUrl };
  [registrationInstance, provisioningInstance] = await Promise.all([
    startExtraService('registration', { name: 'prov-devices', env }),
    startExtraService('provisioning', { name: 'prov-devices', env }),
  ]);
  registration = grpcClient('registration', registrationInstance.grpc);
  provisioning = grpcClient('provisioning', provisioningInstance.grpc);
  bus = new KafkaEventBus({ brokers: [KAFKA_BROKERS], clientId: `tprov-devices-${randomUUID()}` });
  await events.start();
}, 180_000);

afterAll(async () => {
  registration?.close();
  provisioning?.close();
  await bus?.close();
  await events.stop().catch(() => undefined);
  await Promise.all([registrationInstance?.stop(), provisioningInstance?.stop()]);
  await issuer?.close();
});

async function failure(p: Promise<unknown>) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!err) throw new Error('expected the call to fail');
  return { code: (err as { code: number }).code, reason: reasonOf(err) };
}

const auth = async (claims: Parameters<TestTokenIssuer['token']>[0]) => {
  const md = new Metadata();
  md.set('authorization', `Bearer ${await issuer.token(claims)}`);
  return md;
};

/** A tenant announced as auth does; registration makes its device CA. */
async function newTenant(): Promise<string> {
  const tenantId = randomUUID();
  await bus.publish([
    createEvent(TenantCreated, tenantId, {
      tenantId,
      name: `p-${tenantId.slice(0, 8)}`,
      displayName: 'Provisioning test tenant',
    }),
  ]);
  await waitForDeviceCa(registration, tenantId);
  return tenantId;
}

type Device = AssertingDevice;

/** A software device enrolled with a join token: its key stays here, registration certifies it. */
async function enrolDevice(tenantId: string): Promise<Device> {
  const admin = await auth({ sub: randomUUID(), tid: tenantId, roles: ['admin'] });
  const { deviceId, keys } = await enrol(registration, tenantId, admin, {
    joinToken: { ttlSeconds: 600, deviceNamePrefix: '' },
    extra: { displayName: 'LAPTOP-7' },
  });
  return { tenantId, deviceId, keys };
}

async function adminSets(tenantId: string, patch: Record<string, unknown>) {
  const admin = await auth({ sub: randomUUID(), tid: tenantId, roles: ['admin'] });
  const { policy } = await provisioning.getKeyPolicy!({ tenantId }, admin);
  await provisioning.updateKeyPolicy!({ policy: { ...(policy as object), ...patch } }, admin);
}

async function provision(device: Device, userId: string, key: UserKey = newUserKey()) {
  const md = await auth({ sub: userId, tid: device.tenantId });
  return { key, credential: await provisionKey(provisioning, device, md, key) };
}

async function statusOf(tenantId: string, credentialId: string): Promise<string> {
  const res = await provisioning.getCredential!(
    { tenantId, credentialId },
    await internalCall('auth', 'provisioning'),
  );
  return (res.credential as { status: string }).status;
}

async function becomes(tenantId: string, credentialId: string, expected: string): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const s = await statusOf(tenantId, credentialId);
    if (s === expected) return Date.now() - t0;
    if (Date.now() - t0 > 10_000) throw new Error(`status stayed ${s}, expected ${expected}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Begin → Complete with a registered device', () => {
  let tenantId: string;
  beforeAll(async () => {
    tenantId = await newTenant();
  });

  it('issues a 32-byte challenge with the policy, and provisions the key', async () => {
    const device = await enrolDevice(tenantId);
    const userId = randomUUID();
    const md = await auth({ sub: userId, tid: tenantId });
    const begun = await provisioning.beginProvisioning!(
      { deviceId: device.deviceId, deviceAssertion: await deviceAssertion(device) },
      md,
    );
    expect(Buffer.from(begun.challenge as string, 'base64url')).toHaveLength(32);
    expect(begun.policy).toMatchObject({ tenantId, mfaFreshnessSeconds: 600 });
    const { key, credential } = await provision(device, userId);
    expect(credential).toMatchObject({
      credentialId: key.expectedCredentialId,
      status: 'CREDENTIAL_STATUS_ACTIVE',
    });
  });

  it.each([
    [
      'signed by another key',
      async (d: Device) =>
        deviceAssertion(d, {
          key: (await webcrypto.subtle.generateKey(EC, true, ['sign'])).privateKey,
        }),
    ],
    ['for another audience', (d: Device) => deviceAssertion(d, { aud: 'latchkey-registration' })],
    ['that is not a JWS', () => Promise.resolve('garbage')],
  ])('refuses a device assertion %s (bad_device_assertion)', async (_what, make) => {
    const device = await enrolDevice(tenantId);
    const userId = randomUUID();
    const err = await failure(
      provisioning.beginProvisioning!(
        { deviceId: device.deviceId, deviceAssertion: await make(device) },
        await auth({ sub: userId, tid: tenantId }),
      ),
    );
    expect(err).toEqual({ code: status.UNAUTHENTICATED, reason: 'BAD_DEVICE_ASSERTION' });
    await events.waitFor(tenantId, 'provisioning_failed', {
      userId,
      reason: 'bad_device_assertion',
    });
  });

  it('refuses a replayed device assertion (same jti)', async () => {
    const device = await enrolDevice(tenantId);
    const md = await auth({ sub: randomUUID(), tid: tenantId });
    const once = await deviceAssertion(device);
    await provisioning.beginProvisioning!({ deviceId: device.deviceId, deviceAssertion: once }, md);
    const err = await failure(
      provisioning.beginProvisioning!({ deviceId: device.deviceId, deviceAssertion: once }, md),
    );
    expect(err.reason).toBe('BAD_DEVICE_ASSERTION');
  });

  it('refuses a disabled device (device_inactive)', async () => {
    const device = await enrolDevice(tenantId);
    const admin = await auth({ sub: randomUUID(), tid: tenantId, roles: ['admin'] });
    await registration.disableDevice!(
      { tenantId, deviceId: device.deviceId, reason: 'lost' },
      admin,
    );
    const userId = randomUUID();
    const err = await failure(
      provisioning.beginProvisioning!(
        { deviceId: device.deviceId, deviceAssertion: await deviceAssertion(device) },
        await auth({ sub: userId, tid: tenantId }),
      ),
    );
    expect(err).toEqual({ code: status.FAILED_PRECONDITION, reason: 'DEVICE_INACTIVE' });
    await events.waitFor(tenantId, 'provisioning_failed', { userId, reason: 'device_inactive' });
  });

  it("refuses another tenant's device (device_tenant_mismatch)", async () => {
    const device = await enrolDevice(tenantId);
    const stranger = randomUUID();
    const err = await failure(
      provisioning.beginProvisioning!(
        { deviceId: device.deviceId, deviceAssertion: await deviceAssertion(device) },
        await auth({ sub: randomUUID(), tid: stranger }),
      ),
    );
    expect(err).toEqual({ code: status.PERMISSION_DENIED, reason: 'DEVICE_TENANT_MISMATCH' });
  });

  it('lets the device delete its own key, and no other device', async () => {
    const device = await enrolDevice(tenantId);
    const other = await enrolDevice(tenantId);
    const { key } = await provision(device, randomUUID());
    const req = (d: Device, a: string) => ({
      deviceId: d.deviceId,
      credentialId: key.expectedCredentialId,
      deviceAssertion: a,
    });
    const err = await failure(
      provisioning.deleteCredential!(req(other, await deviceAssertion(other))),
    );
    expect(err.code).toBe(status.NOT_FOUND);
    await provisioning.deleteCredential!(req(device, await deviceAssertion(device)));
    await events.waitFor(tenantId, 'deleted', { credentialId: key.expectedCredentialId });
    expect(
      (
        await failure(
          provisioning.getCredential!(
            { tenantId, credentialId: key.expectedCredentialId },
            await internalCall('auth', 'provisioning'),
          ),
        )
      ).code,
    ).toBe(status.NOT_FOUND);
  });
});

describe('keys follow their device', () => {
  it('suspends within 2 s when the device is disabled in registration, and reactivates on enable', async () => {
    const tenantId = await newTenant();
    const device = await enrolDevice(tenantId);
    const { key } = await provision(device, randomUUID());
    const admin = await auth({ sub: randomUUID(), tid: tenantId, roles: ['admin'] });
    await registration.disableDevice!(
      { tenantId, deviceId: device.deviceId, reason: 'lost' },
      admin,
    );
    expect(
      await becomes(tenantId, key.expectedCredentialId, 'CREDENTIAL_STATUS_SUSPENDED'),
    ).toBeLessThan(2000);
    await events.waitFor(tenantId, 'suspended', {
      credentialId: key.expectedCredentialId,
      cause: 'device_disabled',
    });
    await registration.enableDevice!(
      { tenantId, deviceId: device.deviceId, reason: 'found' },
      admin,
    );
    expect(
      await becomes(tenantId, key.expectedCredentialId, 'CREDENTIAL_STATUS_ACTIVE'),
    ).toBeLessThan(2000);
  });

  it('keeps a key suspended on device enable while its user is still disabled', async () => {
    const tenantId = await newTenant();
    const device = await enrolDevice(tenantId);
    const userId = randomUUID();
    const { key } = await provision(device, userId);
    const admin = await auth({ sub: randomUUID(), tid: tenantId, roles: ['admin'] });
    await registration.disableDevice!({ tenantId, deviceId: device.deviceId, reason: 'x' }, admin);
    await becomes(tenantId, key.expectedCredentialId, 'CREDENTIAL_STATUS_SUSPENDED');
    await bus.publish([createEvent(UserDisabled, tenantId, { tenantId, userId })]);
    await registration.enableDevice!({ tenantId, deviceId: device.deviceId, reason: 'x' }, admin);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await statusOf(tenantId, key.expectedCredentialId)).toBe('CREDENTIAL_STATUS_SUSPENDED');
    await bus.publish([createEvent(UserEnabled, tenantId, { tenantId, userId })]);
    await becomes(tenantId, key.expectedCredentialId, 'CREDENTIAL_STATUS_ACTIVE');
  });

  it('revokes the keys of a deleted device', async () => {
    const tenantId = await newTenant();
    const device = await enrolDevice(tenantId);
    const { key } = await provision(device, randomUUID());
    const admin = await auth({ sub: randomUUID(), tid: tenantId, roles: ['admin'] });
    await registration.deleteDevice!(
      { tenantId, deviceId: device.deviceId, reason: 'gone' },
      admin,
    );
    await becomes(tenantId, key.expectedCredentialId, 'CREDENTIAL_STATUS_REVOKED');
    await events.waitFor(tenantId, 'revoked', {
      credentialId: key.expectedCredentialId,
      cause: 'device_deleted',
    });
  });
});

describe('a TPM-resident user key (swtpm + tpm2-tools)', () => {
  let tpm: SoftwareTpm;
  let tenantId: string;
  let device: Device;
  let aikDer: Buffer;
  let rootSubject: string;
  let userKey: UserKey;

  beforeAll(async () => {
    tpm = await SoftwareTpm.start();
    tpm.createKeys();
    tenantId = await newTenant();
    device = await enrolDevice(tenantId);
    const certified = await tpmRootAndAikCertificate(tpm.spki('ak'));
    rootSubject = certified.rootSubject;
    aikDer = certified.aikDer;
    await adminSets(tenantId, { requireTpm: true, tpmRootCertificatesPem: [certified.rootPem] });
    const publicKey = createPublicKey({ key: tpm.spki('key'), format: 'der', type: 'spki' });
    userKey = {
      algorithm: 'ES256',
      privateKey: undefined as never,
      publicKeyJwk: JSON.stringify(publicKey.export({ format: 'jwk' })),
      expectedCredentialId: createHash('sha256').update(tpm.spki('key')).digest('base64url'),
    };
  }, 120_000);

  afterAll(async () => {
    await tpm?.stop();
  });

  /** A proof of possession signed inside the TPM (ECDSA DER → JWS r||s). */
  function tpmProof(challenge: string): string {
    const b64 = (s: string) => Buffer.from(s).toString('base64url');
    const input = `${b64(JSON.stringify({ alg: 'ES256' }))}.${b64(challenge)}`;
    const jose = ecdsaDerToJose(tpm.sign(Buffer.from(input)));
    return `${input}.${jose.toString('base64url')}`;
  }

  async function attempt(userId: string, over: { certInfo?: Buffer; attested?: boolean } = {}) {
    const md = await auth({ sub: userId, tid: tenantId });
    const begun = await provisioning.beginProvisioning!(
      { deviceId: device.deviceId, deviceAssertion: await deviceAssertion(device) },
      md,
    );
    const challenge = begun.challenge as string;
    const certified = tpm.certify(createHash('sha256').update(challenge).digest());
    return provisioning.completeProvisioning!(
      {
        deviceId: device.deviceId,
        challenge,
        publicKeyJwk: userKey.publicKeyJwk,
        algorithm: 'ES256',
        proofOfPossession: tpmProof(challenge),
        ...(over.attested === false
          ? {}
          : {
              keyAttestation: {
                ver: '2.0',
                alg: -7,
                x5c: [aikDer],
                sig: certified.sig,
                certInfo: over.certInfo ?? certified.certInfo,
                pubArea: tpm.pubArea('key'),
              },
            }),
      },
      md,
    );
  }

  it('refuses a tampered certInfo (bad_attestation)', async () => {
    const userId = randomUUID();
    const err = await failure(
      attempt(userId, {
        certInfo: Buffer.concat([Buffer.from([0xff]), Buffer.alloc(10)]),
      }),
    );
    expect(err).toEqual({ code: status.INVALID_ARGUMENT, reason: 'BAD_ATTESTATION' });
    await events.waitFor(tenantId, 'provisioning_failed', { userId, reason: 'bad_attestation' });
  });

  it('refuses the TPM key without its attestation when the policy requires TPM', async () => {
    const err = await failure(attempt(randomUUID(), { attested: false }));
    expect(err.reason).toBe('POLICY_TPM_REQUIRED');
  });

  it('accepts the attested key with level TPM and the AIK issuer', async () => {
    const res = await attempt(randomUUID());
    expect(res.credential).toMatchObject({
      credentialId: userKey.expectedCredentialId,
      attestationLevel: 'ATTESTATION_LEVEL_TPM',
      attestationIssuer: rootSubject,
      status: 'CREDENTIAL_STATUS_ACTIVE',
    });
    await events.waitFor(tenantId, 'provisioned', {
      credentialId: userKey.expectedCredentialId,
      attestationLevel: 'tpm',
    });
  });
});
