/**
 * A device reads its own record with a device assertion: GET /v1/devices/self
 * (`authorization: DeviceAssertion <jws>`) and GetSelfDevice, against the real
 * stack. Only the caller's own device is ever returned; a replayed assertion,
 * another audience, an unknown device or another key are refused with
 * problem+json and a reason; a disabled device reads that it is disabled, a
 * deleted one is refused. A read changes nothing.
 */
import { randomUUID, webcrypto } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import {
  closeBus,
  failure,
  joinToken,
  newTenant,
  registration,
  type RegistrationUnderTest,
  softwareDevice,
  startRegistration,
} from './support';

interface ProtoDevice {
  deviceId: string;
  tenantId: string;
  displayName: string;
  status: string;
  osType: string;
  attestationLevel: string;
  certificateSerial: string;
  certificateExpireTime: unknown;
  lastSeenTime: unknown;
}

interface Enrolled {
  tenantId: string;
  device: ProtoDevice;
  keys: webcrypto.CryptoKeyPair;
  certificatePem: string;
}

const der = (pem: string) =>
  Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64');

describe('a device reads its own record (GET /v1/devices/self, GetSelfDevice)', () => {
  let reg: RegistrationUnderTest;
  let tenantA: string;
  let tenantB: string;

  beforeAll(async () => {
    reg = await startRegistration('device-self-e2e');
    [tenantA, tenantB] = await Promise.all([newTenant(reg), newTenant(reg)]);
  }, 180_000);
  afterAll(async () => {
    await closeBus();
    await reg?.close();
  });

  async function enroll(tenantId: string, displayName = 'LAPTOP-42'): Promise<Enrolled> {
    const d = await softwareDevice();
    const { token } = await joinToken(reg, tenantId);
    const res = await reg.client.registerDevice!(
      registration(tenantId, token, d, { displayName, softwareKeyStorage: true }),
    );
    return {
      tenantId,
      device: res.device as ProtoDevice,
      keys: d.keys,
      certificatePem: res.certificatePem as string,
    };
  }

  /** A device assertion of `e` (x5c = its certificate, aud registration, a fresh jti), claims overridable. */
  function assertion(
    e: Enrolled,
    claims: Record<string, unknown> = {},
    header: Record<string, unknown> = {},
    key = e.keys.privateKey,
  ): Promise<string> {
    return new SignJWT({
      tid: e.tenantId,
      sub: e.device.deviceId,
      aud: 'latchkey-registration',
      iat: Math.floor(Date.now() / 1000),
      jti: randomUUID(),
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', x5c: [der(e.certificatePem)], ...header })
      .sign(key);
  }

  async function self(authorization?: string, query = '') {
    const res = await fetch(`${reg.instance.http}/v1/devices/self${query}`, {
      headers: authorization ? { authorization } : {},
    });
    const body = (await res.json()) as {
      device?: ProtoDevice;
      reason?: string;
      detail?: string;
      status?: number;
    };
    return { status: res.status, type: res.headers.get('content-type') ?? '', body };
  }

  /** The refusal of an HTTP self-read: status, problem+json, its reason. */
  async function refusal(authorization?: string) {
    const r = await self(authorization);
    expect(r.type).toContain('application/problem+json');
    expect(r.body.device).toBeUndefined();
    return { status: r.status, reason: r.body.reason };
  }

  const rowOf = async (deviceId: string) =>
    (
      await reg.db.query(
        'SELECT status, updated_at, last_seen_at, (SELECT count(*) FROM outbox_events WHERE subject = $2) AS events FROM devices WHERE id = $1',
        [deviceId, `devices/${deviceId}`],
      )
    ).rows[0] as Record<string, unknown>;

  it('returns the calling device its own record over HTTP and gRPC, and changes nothing', async () => {
    const a = await enroll(tenantA, 'SELF-READER');
    const before = await rowOf(a.device.deviceId);
    const r = await self(`DeviceAssertion ${await assertion(a)}`);
    expect(r.status).toBe(200);
    expect(r.type).toContain('application/json');
    expect(r.body.device).toMatchObject({
      deviceId: a.device.deviceId,
      tenantId: tenantA,
      status: 'DEVICE_STATUS_ACTIVE',
      displayName: 'SELF-READER',
      osType: 'linux',
      attestationLevel: 'ATTESTATION_LEVEL_SOFTWARE',
      certificateSerial: a.device.certificateSerial,
    });
    expect(r.body.device!.certificateExpireTime).toBeTruthy();
    expect(r.body.device!.lastSeenTime).toBeTruthy();
    // The scheme is case-insensitive.
    expect((await self(`deviceassertion ${await assertion(a)}`)).status).toBe(200);

    const g = await reg.client.getSelfDevice!({ deviceAssertion: await assertion(a) });
    expect(g.device).toMatchObject({
      deviceId: a.device.deviceId,
      tenantId: tenantA,
      status: 'DEVICE_STATUS_ACTIVE',
      certificateSerial: a.device.certificateSerial,
    });
    expect(await rowOf(a.device.deviceId)).toEqual(before);
  });

  it('refuses a replayed assertion, on either transport', async () => {
    const a = await enroll(tenantA);
    const jws = await assertion(a);
    expect((await self(`DeviceAssertion ${jws}`)).status).toBe(200);
    expect(await refusal(`DeviceAssertion ${jws}`)).toEqual({
      status: 401,
      reason: 'DEVICE_ASSERTION_REPLAYED',
    });
    expect(await failure(reg.client.getSelfDevice!({ deviceAssertion: jws }))).toMatchObject({
      code: status.UNAUTHENTICATED,
      reason: 'DEVICE_ASSERTION_REPLAYED',
    });
    // The same holds for an assertion first used over gRPC.
    const viaGrpc = await assertion(a);
    await reg.client.getSelfDevice!({ deviceAssertion: viaGrpc });
    expect(await refusal(`DeviceAssertion ${viaGrpc}`)).toEqual({
      status: 401,
      reason: 'DEVICE_ASSERTION_REPLAYED',
    });
  });

  it('refuses an assertion for another audience, without one, and bad or foreign ones, each with its reason', async () => {
    const a = await enroll(tenantA);
    const stranger = await softwareDevice();
    const forProvisioning = await assertion(a, { aud: 'latchkey-provisioning' });
    const nobody = randomUUID();
    const cases: [string, string | undefined, number, string][] = [
      [
        'another audience',
        `DeviceAssertion ${forProvisioning}`,
        401,
        'DEVICE_ASSERTION_WRONG_AUDIENCE',
      ],
      ['no authorization', undefined, 401, 'DEVICE_ASSERTION_REQUIRED'],
      ['an access-token scheme', `Bearer ${await assertion(a)}`, 401, 'DEVICE_ASSERTION_REQUIRED'],
      ['not a JWS', 'DeviceAssertion not-a-jws', 401, 'DEVICE_ASSERTION_MALFORMED'],
      [
        'no jti',
        `DeviceAssertion ${await assertion(a, { jti: undefined, nonce: 'n-1' })}`,
        401,
        'DEVICE_ASSERTION_MALFORMED',
      ],
      [
        'an unknown device',
        `DeviceAssertion ${await assertion(a, { sub: nobody }, { x5c: undefined, kid: nobody })}`,
        401,
        'DEVICE_UNKNOWN',
      ],
      [
        'another key',
        `DeviceAssertion ${await assertion(a, {}, {}, stranger.keys.privateKey)}`,
        401,
        'DEVICE_ASSERTION_SIGNATURE_INVALID',
      ],
      [
        'an iat ten minutes old',
        `DeviceAssertion ${await assertion(a, { iat: Math.floor(Date.now() / 1000) - 600 })}`,
        401,
        'DEVICE_ASSERTION_STALE',
      ],
    ];
    for (const [what, authorization, code, reason] of cases)
      expect({ what, ...(await refusal(authorization)) }).toEqual({ what, status: code, reason });
    expect(
      await failure(reg.client.getSelfDevice!({ deviceAssertion: forProvisioning })),
    ).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'DEVICE_ASSERTION_WRONG_AUDIENCE' });
    expect(await failure(reg.client.getSelfDevice!({ deviceAssertion: '' }))).toMatchObject({
      code: status.UNAUTHENTICATED,
      reason: 'DEVICE_ASSERTION_REQUIRED',
    });
    // A refused assertion used no jti: the wrong-audience one is refused for its audience again.
    expect(await refusal(`DeviceAssertion ${forProvisioning}`)).toEqual({
      status: 401,
      reason: 'DEVICE_ASSERTION_WRONG_AUDIENCE',
    });
  });

  it("never gives a device of tenant A anything of tenant B's", async () => {
    const a = await enroll(tenantA);
    const b = await enroll(tenantB);
    // A's key claiming to be B's device (B's tenant and id), with A's certificate or by kid.
    const asB = { tid: tenantB, sub: b.device.deviceId };
    expect(await refusal(`DeviceAssertion ${await assertion(a, asB)}`)).toEqual({
      status: 401,
      reason: 'DEVICE_CERTIFICATE_UNTRUSTED',
    });
    expect(
      await refusal(
        `DeviceAssertion ${await assertion(a, asB, { x5c: undefined, kid: b.device.deviceId })}`,
      ),
    ).toEqual({ status: 401, reason: 'DEVICE_ASSERTION_SIGNATURE_INVALID' });
    // A's own device placed in tenant B: there is no such device there.
    expect(await refusal(`DeviceAssertion ${await assertion(a, { tid: tenantB })}`)).toEqual({
      status: 401,
      reason: 'DEVICE_UNKNOWN',
    });
    // B's certificate presented with A's key.
    expect(
      await refusal(`DeviceAssertion ${await assertion(a, asB, { x5c: [der(b.certificatePem)] })}`),
    ).toEqual({ status: 401, reason: 'DEVICE_ASSERTION_SIGNATURE_INVALID' });
    // Nothing in the request selects a device but the assertion: query parameters naming B are ignored.
    const r = await self(
      `DeviceAssertion ${await assertion(a)}`,
      `?tenantId=${tenantB}&deviceId=${b.device.deviceId}`,
    );
    expect(r.status).toBe(200);
    expect(r.body.device).toMatchObject({ deviceId: a.device.deviceId, tenantId: tenantA });
    const g = await reg.client.getSelfDevice!({
      deviceAssertion: await assertion(a),
      tenantId: tenantB,
      deviceId: b.device.deviceId,
    });
    expect(g.device).toMatchObject({ deviceId: a.device.deviceId, tenantId: tenantA });
  });

  it('lets a disabled device read that it is disabled (signed by its key only), and refuses a deleted one', async () => {
    const a = await enroll(tenantA);
    const stranger = await softwareDevice();
    const ids = { tenantId: tenantA, deviceId: a.device.deviceId };
    await reg.client.disableDevice!({ ...ids, reason: 'self e2e' }, await reg.as(tenantA));
    const r = await self(`DeviceAssertion ${await assertion(a)}`);
    expect(r.status).toBe(200);
    expect(r.body.device).toMatchObject({
      deviceId: a.device.deviceId,
      status: 'DEVICE_STATUS_DISABLED',
    });
    const g = await reg.client.getSelfDevice!({ deviceAssertion: await assertion(a) });
    expect(g.device).toMatchObject({ status: 'DEVICE_STATUS_DISABLED' });
    // Disabled or not, only the device key's signature counts.
    expect(
      await refusal(`DeviceAssertion ${await assertion(a, {}, {}, stranger.keys.privateKey)}`),
    ).toEqual({ status: 401, reason: 'DEVICE_ASSERTION_SIGNATURE_INVALID' });

    await reg.client.enableDevice!(ids, await reg.as(tenantA));
    expect((await self(`DeviceAssertion ${await assertion(a)}`)).body.device).toMatchObject({
      status: 'DEVICE_STATUS_ACTIVE',
    });

    await reg.client.deleteDevice!({ ...ids, reason: 'self e2e' }, await reg.as(tenantA));
    expect(await refusal(`DeviceAssertion ${await assertion(a)}`)).toEqual({
      status: 412,
      reason: 'DEVICE_DELETED',
    });
    expect(
      await failure(reg.client.getSelfDevice!({ deviceAssertion: await assertion(a) })),
    ).toMatchObject({ code: status.FAILED_PRECONDITION, reason: 'DEVICE_DELETED' });
  });
});
