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
        .setProtectedHeader({ alg: 'ES256', x5c: [der.toString('base64')] })
        .sign(keys.privateKey);
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
