/**
 * The device lifecycle against the real stack: listing with filters and
 * cursors, disable/enable/delete with their events, the CRL, and certificate
 * renewal authorized by a device assertion signed by the current device key.
 */
import { createHash, randomUUID, webcrypto } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import * as x509 from '@peculiar/x509';
import {
  closeBus,
  failure,
  joinToken,
  newTenant,
  opensslCsr,
  registration,
  type RegistrationUnderTest,
  type SoftwareDevice,
  softwareDevice,
  startRegistration,
} from './support';

interface ProtoDevice {
  deviceId: string;
  displayName: string;
  status: string;
  osType: string;
  attestationLevel: string;
  certificateSerial: string;
  certificatePem: string;
  deviceKeyThumbprint: string;
}

describe('device lifecycle', () => {
  let reg: RegistrationUnderTest;
  let tenant: string;

  beforeAll(async () => {
    reg = await startRegistration('lifecycle-e2e');
    tenant = await newTenant(reg);
  }, 120_000);
  afterAll(async () => {
    await closeBus();
    await reg?.close();
  });

  async function enroll(extra: Record<string, unknown> = {}, device?: SoftwareDevice) {
    const d = device ?? (await softwareDevice());
    const { token } = await joinToken(reg, tenant);
    const res = await reg.client.registerDevice!(registration(tenant, token, d, extra));
    return {
      device: res.device as ProtoDevice,
      keys: d.keys,
      /** The registration's CSR: one for the device's current key. */
      csrPem: d.csrPem,
      certificatePem: res.certificatePem as string,
    };
  }

  const eventsOf = async (deviceId: string) =>
    (
      await reg.db.query('SELECT type, data FROM outbox_events WHERE subject = $1 ORDER BY id', [
        `devices/${deviceId}`,
      ])
    ).rows as { type: string; data: Record<string, unknown> }[];

  async function crlText(): Promise<string> {
    const dir = opensslCsr(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']).dir;
    const ca = (await reg.client.getTenantCaCertificate!({ tenantId: tenant }))
      .certificatePem as string;
    const crl = (await reg.client.getCertificateRevocationList!({ tenantId: tenant }))
      .crlDer as Buffer;
    writeFileSync(join(dir, 'ca.pem'), ca);
    writeFileSync(join(dir, 'crl.der'), crl);
    const out = execFileSync(
      'openssl',
      ['crl', '-inform', 'DER', '-in', 'crl.der', '-CAfile', 'ca.pem', '-noout', '-text'],
      { cwd: dir, encoding: 'utf8', stdio: 'pipe' },
    );
    return out.replace(/:/g, '').toLowerCase();
  }

  it('lists devices with filters, in a stable order, page by page', async () => {
    const prefix = `LIST-${randomUUID().slice(0, 6)}-`;
    const made: string[] = [];
    for (let i = 0; i < 5; i++)
      made.push(
        (
          await enroll({
            displayName: `${prefix}${i}`,
            osType: i % 2 ? 'windows' : 'linux',
            softwareKeyStorage: i === 4,
          })
        ).device.deviceId,
      );
    const admin = await reg.as(tenant);
    const seen: string[] = [];
    let pageToken = '';
    do {
      const page = await reg.client.listDevices!(
        { tenantId: tenant, pageSize: 2, pageToken, displayNamePrefix: prefix },
        admin,
      );
      seen.push(...(page.devices as ProtoDevice[]).map((d) => d.deviceId));
      pageToken = page.nextPageToken as string;
    } while (pageToken);
    expect(seen).toEqual(made);
    const windows = await reg.client.listDevices!(
      { tenantId: tenant, osType: 'WINDOWS', displayNamePrefix: prefix },
      admin,
    );
    expect((windows.devices as ProtoDevice[]).map((d) => d.displayName)).toEqual([
      `${prefix}1`,
      `${prefix}3`,
    ]);
    const software = await reg.client.listDevices!(
      {
        tenantId: tenant,
        attestationLevel: 'ATTESTATION_LEVEL_SOFTWARE',
        displayNamePrefix: prefix,
      },
      admin,
    );
    expect((software.devices as ProtoDevice[]).map((d) => d.deviceId)).toEqual([made[4]]);
    await reg.client.disableDevice!({ tenantId: tenant, deviceId: made[2] }, admin);
    const disabled = await reg.client.listDevices!(
      { tenantId: tenant, status: 'DEVICE_STATUS_DISABLED', displayNamePrefix: prefix },
      admin,
    );
    expect((disabled.devices as ProtoDevice[]).map((d) => d.deviceId)).toEqual([made[2]]);
    expect(
      await failure(reg.client.listDevices!({ tenantId: tenant, pageToken: 'garbage' }, admin)),
    ).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_PAGE_TOKEN' });
  });

  it('disables, enables and deletes a device, each with its event; deletion revokes the certificate', async () => {
    const { device } = await enroll();
    const admin = await reg.as(tenant);
    const ids = { tenantId: tenant, deviceId: device.deviceId };
    const disabled = await reg.client.disableDevice!({ ...ids, reason: 'lost' }, admin);
    expect((disabled.device as ProtoDevice).status).toBe('DEVICE_STATUS_DISABLED');
    const enabled = await reg.client.enableDevice!({ ...ids, reason: 'found' }, admin);
    expect((enabled.device as ProtoDevice).status).toBe('DEVICE_STATUS_ACTIVE');
    expect(await crlText()).not.toContain(device.certificateSerial);
    const deleted = await reg.client.deleteDevice!({ ...ids, reason: 'retired' }, admin);
    expect((deleted.device as ProtoDevice).status).toBe('DEVICE_STATUS_DELETED');
    expect(await crlText()).toContain(device.certificateSerial);
    // Deleted is final.
    expect(await failure(reg.client.enableDevice!(ids, admin))).toMatchObject({
      code: status.FAILED_PRECONDITION,
      reason: 'DEVICE_DELETED',
    });
    await reg.client.deleteDevice!(ids, admin); // idempotent, no second event
    const events = await eventsOf(device.deviceId);
    expect(events.map((e) => e.type)).toEqual([
      'dev.latchkey.device.registered.v1',
      'dev.latchkey.device.disabled.v1',
      'dev.latchkey.device.enabled.v1',
      'dev.latchkey.device.deleted.v1',
    ]);
    expect(events[1]!.data).toMatchObject({
      tenantId: tenant,
      deviceId: device.deviceId,
      reason: 'lost',
    });
    expect(typeof events[1]!.data.actorId).toBe('string');
    expect(events[3]!.data).toMatchObject({ revokedSerials: [device.certificateSerial] });
    // The relay publishes them to Kafka.
    const published = await reg.db.query(
      'SELECT count(*) AS n FROM outbox_events WHERE subject = $1 AND published_at IS NULL',
      [`devices/${device.deviceId}`],
    );
    expect(Number(published.rows[0].n)).toBeLessThanOrEqual(4);
  });

  describe('RenewDeviceCertificate', () => {
    async function assertion(
      keys: webcrypto.CryptoKeyPair,
      certificatePem: string,
      deviceId: string,
      csrPem: string,
      claims: Record<string, unknown> = {},
      header: Record<string, unknown> = {},
    ) {
      const der = Buffer.from(certificatePem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const csrDer = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      return new SignJWT({
        tid: tenant,
        sub: deviceId,
        aud: 'latchkey-registration',
        iat: Math.floor(Date.now() / 1000),
        jti: randomUUID(),
        csr_sha256: createHash('sha256').update(csrDer).digest('base64url'),
        ...claims,
      })
        .setProtectedHeader({ alg: 'ES256', x5c: [der.toString('base64')], ...header })
        .sign(keys.privateKey);
    }

    type Renewal = { tenantId: string; deviceId: string; csrPem: string; deviceAssertion: string };

    /**
     * A renewal request of an enrolled device for its current key (its registration CSR),
     * naming the device by `kid`: such a renewal leaves the assertion's key and signature valid,
     * so a re-submitted request is told from a new one only by its jti.
     */
    async function sameKeyRenewal(
      e: Awaited<ReturnType<typeof enroll>>,
      claims: Record<string, unknown> = {},
    ): Promise<Renewal> {
      const deviceAssertion = await assertion(
        e.keys,
        e.certificatePem,
        e.device.deviceId,
        e.csrPem,
        claims,
        { x5c: undefined, kid: e.device.deviceId },
      );
      return { tenantId: tenant, deviceId: e.device.deviceId, csrPem: e.csrPem, deviceAssertion };
    }

    /** A renewal's outcome: the new serial, or the refusal (HTTP status or gRPC code, reason). */
    type Outcome = { serial?: string; status?: number; code?: number; reason?: string };

    /** POST /v1/tenants/:t/devices/:d/certificate/renew. */
    async function renewOverHttp(r: Renewal): Promise<Outcome> {
      const res = await fetch(
        `${reg.instance.http}/v1/tenants/${r.tenantId}/devices/${r.deviceId}/certificate/renew`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ csrPem: r.csrPem, deviceAssertion: r.deviceAssertion }),
        },
      );
      const body = (await res.json()) as { device?: ProtoDevice; reason?: string };
      if (res.ok) return { status: res.status, serial: body.device!.certificateSerial };
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      return { status: res.status, reason: body.reason };
    }

    /** RenewDeviceCertificate. */
    function renewOverGrpc(r: Renewal): Promise<Outcome> {
      return reg.client.renewDeviceCertificate!(r).then(
        (res) => ({ serial: (res.device as ProtoDevice).certificateSerial }),
        async (err: unknown) => {
          const { code, reason } = await failure(Promise.reject(err));
          return { code, reason };
        },
      );
    }

    /** What a device has stored: its certificate, certificate rows, renewal events, jti rows. */
    async function storedOf(deviceId: string) {
      const { rows } = await reg.db.query(
        `SELECT d.certificate_serial AS serial,
           (SELECT count(*)::int FROM device_certificates c WHERE c.device_id = d.id) AS certificates,
           (SELECT count(*)::int FROM outbox_events e WHERE e.subject = $2
              AND e.type = 'dev.latchkey.device.certificate_renewed.v1') AS renewals,
           (SELECT count(*)::int FROM device_assertion_jtis j WHERE j.key LIKE $3) AS jtis
         FROM devices d WHERE d.id = $1`,
        [deviceId, `devices/${deviceId}`, `%:${deviceId}:%`],
      );
      return rows[0] as { serial: string; certificates: number; renewals: number; jtis: number };
    }

    it('issues a certificate for a new key, revokes the old one, records the event and updates last-seen', async () => {
      const { device, keys, certificatePem } = await enroll();
      const next = await softwareDevice();
      const jws = await assertion(keys, certificatePem, device.deviceId, next.csrPem);
      const res = await reg.client.renewDeviceCertificate!({
        tenantId: tenant,
        deviceId: device.deviceId,
        csrPem: next.csrPem,
        deviceAssertion: jws,
      });
      const renewed = res.device as ProtoDevice & { lastSeenTime: unknown };
      expect(renewed.certificateSerial).not.toBe(device.certificateSerial);
      expect(renewed.deviceKeyThumbprint).not.toBe(device.deviceKeyThumbprint);
      expect(renewed.lastSeenTime).toBeTruthy();
      expect(await crlText()).toContain(device.certificateSerial);
      const events = await eventsOf(device.deviceId);
      expect(events[events.length - 1]).toMatchObject({
        type: 'dev.latchkey.device.certificate_renewed.v1',
        data: {
          previousSerial: device.certificateSerial,
          certificateSerial: renewed.certificateSerial,
          keyChanged: true,
        },
      });
      // The same assertion again: its certificate is no longer the device's.
      expect(
        await failure(
          reg.client.renewDeviceCertificate!({
            tenantId: tenant,
            deviceId: device.deviceId,
            csrPem: next.csrPem,
            deviceAssertion: jws,
          }),
        ),
      ).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'DEVICE_ASSERTION_INVALID' });
      // The new key can renew with the new certificate.
      const again = await softwareDevice();
      await reg.client.renewDeviceCertificate!({
        tenantId: tenant,
        deviceId: device.deviceId,
        csrPem: again.csrPem,
        deviceAssertion: await assertion(
          next.keys,
          res.certificatePem as string,
          device.deviceId,
          again.csrPem,
        ),
      });
    });

    it('refuses an assertion by another key, for another CSR, audience or time, and a disabled device', async () => {
      const { device, keys, certificatePem } = await enroll();
      const next = await softwareDevice();
      const stranger = await softwareDevice();
      const ids = { tenantId: tenant, deviceId: device.deviceId, csrPem: next.csrPem };
      const cases: [string, Promise<string>][] = [
        ['another key', assertion(stranger.keys, certificatePem, device.deviceId, next.csrPem)],
        ['another CSR', assertion(keys, certificatePem, device.deviceId, stranger.csrPem)],
        [
          'another audience',
          assertion(keys, certificatePem, device.deviceId, next.csrPem, { aud: 'someone-else' }),
        ],
        [
          'an old iat',
          assertion(keys, certificatePem, device.deviceId, next.csrPem, {
            iat: Math.floor(Date.now() / 1000) - 600,
          }),
        ],
      ];
      for (const [what, jws] of cases) {
        const err = await failure(
          reg.client.renewDeviceCertificate!({ ...ids, deviceAssertion: await jws }),
        );
        expect([what, err.code, err.reason]).toEqual([
          what,
          status.UNAUTHENTICATED,
          'DEVICE_ASSERTION_INVALID',
        ]);
      }
      await reg.client.disableDevice!(
        { tenantId: tenant, deviceId: device.deviceId },
        await reg.as(tenant),
      );
      expect(
        await failure(
          reg.client.renewDeviceCertificate!({
            ...ids,
            deviceAssertion: await assertion(keys, certificatePem, device.deviceId, next.csrPem),
          }),
        ),
      ).toMatchObject({ code: status.FAILED_PRECONDITION, reason: 'DEVICE_NOT_ACTIVE' });
    });

    it('accepts a renewal assertion once: the same request again is refused as replayed over gRPC and HTTP, and stores nothing', async () => {
      const e = await enroll();
      const first = await sameKeyRenewal(e);
      const renewed = (await reg.client.renewDeviceCertificate!(first)).device as ProtoDevice;
      expect(renewed.certificateSerial).not.toBe(e.device.certificateSerial);
      expect(renewed.deviceKeyThumbprint).toBe(e.device.deviceKeyThumbprint);
      const after = await storedOf(e.device.deviceId);
      expect(after).toMatchObject({ serial: renewed.certificateSerial, renewals: 1, jtis: 1 });
      const replayed = { code: status.UNAUTHENTICATED, reason: 'DEVICE_ASSERTION_REPLAYED' };
      expect(await failure(reg.client.renewDeviceCertificate!(first))).toMatchObject(replayed);
      expect(await renewOverHttp(first)).toEqual({
        status: 401,
        reason: 'DEVICE_ASSERTION_REPLAYED',
      });
      // One record of used assertions: the renewal's is refused by the self-read too.
      expect(
        await failure(reg.client.getSelfDevice!({ deviceAssertion: first.deviceAssertion })),
      ).toMatchObject(replayed);
      expect(await storedOf(e.device.deviceId)).toEqual(after);

      // A request first made over HTTP is refused over gRPC (and HTTP) the same way.
      const viaHttp = await sameKeyRenewal(e);
      const ok = await renewOverHttp(viaHttp);
      expect(ok).toMatchObject({ status: 200 });
      expect(ok.serial).not.toBe(renewed.certificateSerial);
      const later = await storedOf(e.device.deviceId);
      expect(later).toEqual({
        serial: ok.serial,
        certificates: after.certificates + 1,
        renewals: 2,
        jtis: 2,
      });
      expect(await failure(reg.client.renewDeviceCertificate!(viaHttp))).toMatchObject(replayed);
      expect(await renewOverHttp(viaHttp)).toEqual({
        status: 401,
        reason: 'DEVICE_ASSERTION_REPLAYED',
      });
      expect(await storedOf(e.device.deviceId)).toEqual(later);
    });

    it('gives one signed request submitted 20 times at once exactly one certificate and one event', async () => {
      const e = await enroll();
      const before = await storedOf(e.device.deviceId);
      const request = await sameKeyRenewal(e);
      // Half over gRPC, half over HTTP, all at once.
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2 ? renewOverHttp(request) : renewOverGrpc(request),
        ),
      );
      const won = outcomes.filter((o) => o.serial);
      expect(won).toHaveLength(1);
      const refused = outcomes.filter((o) => !o.serial);
      expect(refused).toHaveLength(19);
      for (const o of refused)
        expect(o).toEqual(
          o.status === undefined
            ? { code: status.UNAUTHENTICATED, reason: 'DEVICE_ASSERTION_REPLAYED' }
            : { status: 401, reason: 'DEVICE_ASSERTION_REPLAYED' },
        );
      expect(await storedOf(e.device.deviceId)).toEqual({
        serial: won[0]!.serial,
        certificates: before.certificates + 1,
        renewals: 1,
        jtis: 1,
      });
    });

    it('gives a renewal to a new key (x5c) submitted 20 times at once one certificate; the rest are refused, issuing nothing', async () => {
      const e = await enroll();
      const next = await softwareDevice();
      const before = await storedOf(e.device.deviceId);
      const request: Renewal = {
        tenantId: tenant,
        deviceId: e.device.deviceId,
        csrPem: next.csrPem,
        deviceAssertion: await assertion(e.keys, e.certificatePem, e.device.deviceId, next.csrPem),
      };
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2 ? renewOverHttp(request) : renewOverGrpc(request),
        ),
      );
      expect(outcomes.filter((o) => o.serial)).toHaveLength(1);
      // Replayed, or (arriving once the new certificate is stored) naming the replaced one.
      for (const o of outcomes.filter((o) => !o.serial)) {
        expect(o.status ?? o.code).toBe(o.status === undefined ? status.UNAUTHENTICATED : 401);
        expect(['DEVICE_ASSERTION_REPLAYED', 'DEVICE_ASSERTION_INVALID']).toContain(o.reason);
      }
      expect(await storedOf(e.device.deviceId)).toMatchObject({
        certificates: before.certificates + 1,
        renewals: 1,
        jtis: 1,
      });
    });

    it('refuses a renewal assertion without a jti (a nonce does not do), storing nothing', async () => {
      const e = await enroll();
      const before = await storedOf(e.device.deviceId);
      const malformed = { code: status.UNAUTHENTICATED, reason: 'DEVICE_ASSERTION_MALFORMED' };
      const withNonce = await sameKeyRenewal(e, { jti: undefined, nonce: 'n-1' });
      expect(await failure(reg.client.renewDeviceCertificate!(withNonce))).toMatchObject(malformed);
      expect(await renewOverHttp(withNonce)).toEqual({
        status: 401,
        reason: 'DEVICE_ASSERTION_MALFORMED',
      });
      const emptyJti = await sameKeyRenewal(e, { jti: '' });
      expect(await failure(reg.client.renewDeviceCertificate!(emptyJti))).toMatchObject(malformed);
      expect(await storedOf(e.device.deviceId)).toEqual(before);
      // The same request with a jti renews.
      await reg.client.renewDeviceCertificate!(await sameKeyRenewal(e));
      expect(await storedOf(e.device.deviceId)).toMatchObject({ renewals: 1, jtis: 1 });
    });

    it('uses an assertion up once it verifies, even if the renewal is then refused; an unverified one uses nothing', async () => {
      const e = await enroll();
      const next = await softwareDevice();
      const stranger = await softwareDevice();
      const ids = { tenantId: tenant, deviceId: e.device.deviceId };
      const sign = (csrPem: string, jti: string, keys = e.keys) =>
        assertion(keys, e.certificatePem, e.device.deviceId, csrPem, { jti });
      const replayed = { code: status.UNAUTHENTICATED, reason: 'DEVICE_ASSERTION_REPLAYED' };

      // Sent with a CSR it does not cover: refused, and the assertion is spent.
      const covered = await sign(next.csrPem, randomUUID());
      expect(
        await failure(
          reg.client.renewDeviceCertificate!({
            ...ids,
            csrPem: stranger.csrPem,
            deviceAssertion: covered,
          }),
        ),
      ).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'DEVICE_ASSERTION_INVALID' });
      expect(
        await failure(
          reg.client.renewDeviceCertificate!({
            ...ids,
            csrPem: next.csrPem,
            deviceAssertion: covered,
          }),
        ),
      ).toMatchObject(replayed);

      // Over a malformed CSR: refused for the CSR, then as replayed.
      const garbage =
        '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n';
      const overGarbage = {
        ...ids,
        csrPem: garbage,
        deviceAssertion: await sign(garbage, randomUUID()),
      };
      expect(await failure(reg.client.renewDeviceCertificate!(overGarbage))).toMatchObject({
        code: status.INVALID_ARGUMENT,
        reason: 'MALFORMED_CSR',
      });
      expect(await failure(reg.client.renewDeviceCertificate!(overGarbage))).toMatchObject(
        replayed,
      );
      expect(await storedOf(e.device.deviceId)).toMatchObject({
        serial: e.device.certificateSerial,
        renewals: 0,
        jtis: 2,
      });

      // Signed by another key: refused before its jti is taken, so the device's own assertion
      // with that jti still renews.
      const jti = randomUUID();
      expect(
        await failure(
          reg.client.renewDeviceCertificate!({
            ...ids,
            csrPem: next.csrPem,
            deviceAssertion: await sign(next.csrPem, jti, stranger.keys),
          }),
        ),
      ).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'DEVICE_ASSERTION_INVALID' });
      expect(await storedOf(e.device.deviceId)).toMatchObject({ jtis: 2 });
      await reg.client.renewDeviceCertificate!({
        ...ids,
        csrPem: next.csrPem,
        deviceAssertion: await sign(next.csrPem, jti),
      });
      expect(await storedOf(e.device.deviceId)).toMatchObject({ renewals: 1, jtis: 3 });
    });
  });

  it('keeps the tenant device policy: certificate lifetime applies to new certificates', async () => {
    const admin = await reg.as(tenant);
    await reg.client.updateDevicePolicy!(
      {
        policy: {
          tenantId: tenant,
          requireTpm: false,
          certificateValidityDays: 30,
          tpmRootCertificatesPem: [],
        },
      },
      admin,
    );
    const got = await reg.client.getDevicePolicy!({ tenantId: tenant }, admin);
    expect(got.policy).toMatchObject({ certificateValidityDays: 30, requireTpm: false });
    const { certificatePem } = await enroll();
    const cert = new x509.X509Certificate(certificatePem);
    expect((cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000).toBe(30);
    expect(
      await failure(
        reg.client.updateDevicePolicy!(
          {
            policy: {
              tenantId: tenant,
              certificateValidityDays: 5000,
              tpmRootCertificatesPem: ['nope'],
            },
          },
          admin,
        ),
      ),
    ).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_DEVICE_POLICY' });
  });
});
