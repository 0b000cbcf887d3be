/**
 * Device registration against the real stack: tenant CAs from auth's tenant
 * events, join tokens, RegisterDevice with its error classes, certificates
 * checked by openssl, tenant isolation of the admin calls and concurrency.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { currentKeyEncryptionKeyId, internalCall, Metadata } from '@latchkey/testing';
import {
  closeBus,
  failure,
  joinToken,
  newTenant,
  opensslCsr,
  registration,
  type RegistrationUnderTest,
  softwareDevice,
  startRegistration,
} from './support';

interface ProtoDevice {
  deviceId: string;
  status: string;
  attestationLevel: string;
  certificateSerial: string;
  deviceKeyThumbprint: string;
  transportKeyThumbprint: string;
}

describe('device registration', () => {
  let reg: RegistrationUnderTest;
  let tenant: string;
  let other: string;

  beforeAll(async () => {
    reg = await startRegistration('registration-e2e');
    [tenant, other] = await Promise.all([newTenant(reg), newTenant(reg)]);
  }, 120_000);
  afterAll(async () => {
    await closeBus();
    await reg?.close();
  });

  const devicesOf = async (tenantId: string) =>
    Number(
      (await reg.db.query('SELECT count(*) AS n FROM devices WHERE tenant_id = $1', [tenantId]))
        .rows[0].n,
    );
  const failuresOf = async (tenantId: string) =>
    (
      await reg.db.query(
        `SELECT data FROM outbox_events WHERE tenant_id = $1 AND type = 'dev.latchkey.device.registration_failed.v1' ORDER BY id`,
        [tenantId],
      )
    ).rows.map((r: { data: { reason: string } }) => r.data.reason);

  describe('tenant device CA', () => {
    it('creates an EC P-256 CA for a tenant announced by auth, its key sealed with the KEK', async () => {
      const res = await reg.client.getTenantCaCertificate!({ tenantId: tenant });
      const pem = res.certificatePem as string;
      const dir = opensslCsr(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']).dir;
      writeFileSync(join(dir, 'ca.pem'), pem);
      const text = execFileSync('openssl', ['x509', '-in', 'ca.pem', '-noout', '-text'], {
        cwd: dir,
        encoding: 'utf8',
      });
      expect(text).toContain('ASN1 OID: prime256v1');
      expect(text).toMatch(/CA:TRUE/);
      expect(text).toContain(`latchkey device CA ${tenant}`);
      const row = (
        await reg.db.query('SELECT encrypted_private_key FROM tenant_cas WHERE tenant_id = $1', [
          tenant,
        ])
      ).rows[0] as { encrypted_private_key: string };
      // Sealed with the current key: the first of KEY_ENCRYPTION_KEYS (the clone's local one).
      expect(row.encrypted_private_key.startsWith(`kek1.${currentKeyEncryptionKeyId()}.`)).toBe(
        true,
      );
      expect(row.encrypted_private_key).not.toContain('PRIVATE KEY');
    });

    it('serves the same CA over HTTP, and a signed, empty CRL for a new tenant', async () => {
      const pem = await (
        await fetch(`${reg.instance.http}/v1/tenants/${tenant}/ca-certificate`)
      ).text();
      expect(pem).toBe(
        (await reg.client.getTenantCaCertificate!({ tenantId: tenant })).certificatePem,
      );
      const crl = await fetch(`${reg.instance.http}/v1/tenants/${tenant}/crl`);
      expect(crl.status).toBe(200);
      expect(crl.headers.get('content-type')).toMatch(/application\/pkix-crl/);
      const dir = opensslCsr(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']).dir;
      writeFileSync(join(dir, 'ca.pem'), pem);
      writeFileSync(join(dir, 'crl.der'), Buffer.from(await crl.arrayBuffer()));
      const out = execFileSync(
        'openssl',
        ['crl', '-inform', 'DER', '-in', 'crl.der', '-CAfile', 'ca.pem', '-noout', '-text'],
        { cwd: dir, encoding: 'utf8', stdio: 'pipe' },
      );
      expect(out).toContain('No Revoked Certificates');
    });
  });

  describe('RegisterDevice', () => {
    it.each([
      ['EC P-256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
      ['RSA 3072', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072']],
    ])(
      'certifies an %s key whose CSR openssl made, and openssl verifies the certificate',
      async (_kind, args) => {
        const { dir, csrPem } = opensslCsr(args);
        const { token } = await joinToken(reg, tenant);
        const { transportPublicKey } = await softwareDevice();
        const res = await reg.client.registerDevice!(
          registration(tenant, token, { csrPem, transportPublicKey }),
        );
        const device = res.device as ProtoDevice;
        expect(device.status).toBe('DEVICE_STATUS_ACTIVE');
        expect(device.attestationLevel).toBe('ATTESTATION_LEVEL_NONE');
        const chain = res.certificateChainPem as string[];
        writeFileSync(join(dir, 'root.pem'), chain[chain.length - 1]!);
        writeFileSync(join(dir, 'device.pem'), res.certificatePem as string);
        const verified = execFileSync(
          'openssl',
          ['verify', '-purpose', 'sslclient', '-CAfile', 'root.pem', 'device.pem'],
          { cwd: dir, encoding: 'utf8' },
        );
        expect(verified).toContain('device.pem: OK');
        const text = execFileSync('openssl', ['x509', '-in', 'device.pem', '-noout', '-text'], {
          cwd: dir,
          encoding: 'utf8',
        });
        expect(text).toContain(`Subject: CN = ${device.deviceId}`);
        expect(text).toContain(`URI:urn:latchkey:tenant:${tenant}:device:${device.deviceId}`);
        expect(text).toContain('TLS Web Client Authentication');
        expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\s/);
        // The certificate's public key is the CSR's: openssl compares the two.
        const keyOfCert = execFileSync(
          'openssl',
          ['x509', '-in', 'device.pem', '-noout', '-pubkey'],
          {
            cwd: dir,
            encoding: 'utf8',
          },
        );
        const keyOfCsr = execFileSync(
          'openssl',
          ['req', '-in', 'device.csr', '-noout', '-pubkey'],
          {
            cwd: dir,
            encoding: 'utf8',
          },
        );
        expect(keyOfCert).toBe(keyOfCsr);
        const serial = execFileSync('openssl', ['x509', '-in', 'device.pem', '-noout', '-serial'], {
          cwd: dir,
          encoding: 'utf8',
        });
        expect(serial.trim().toLowerCase()).toBe(`serial=${device.certificateSerial}`);
        expect(device.certificateSerial).toMatch(/^01[0-9a-f]{32}$/);
        const days = execFileSync('openssl', ['x509', '-in', 'device.pem', '-noout', '-dates'], {
          cwd: dir,
          encoding: 'utf8',
        });
        const [, from, to] = /notBefore=(.*)\nnotAfter=(.*)/.exec(days)!;
        expect((Date.parse(to!) - Date.parse(from!)) / 86_400_000).toBe(365);
      },
    );

    it('records the device with both key thumbprints and a device.registered event in the outbox', async () => {
      const { token, joinTokenId } = await joinToken(reg, tenant);
      const res = await reg.client.registerDevice!(
        registration(tenant, token, await softwareDevice(), { softwareKeyStorage: true }),
      );
      const device = res.device as ProtoDevice;
      expect(device.attestationLevel).toBe('ATTESTATION_LEVEL_SOFTWARE');
      expect(device.deviceKeyThumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(device.transportKeyThumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const got = await reg.client.getDevice!(
        { tenantId: tenant, deviceId: device.deviceId },
        await internalCall('auth', 'registration'),
      );
      expect(got.device).toMatchObject({
        deviceId: device.deviceId,
        certificateSerial: device.certificateSerial,
      });
      const events = await reg.db.query(
        `SELECT data FROM outbox_events WHERE type = 'dev.latchkey.device.registered.v1' AND subject = $1`,
        [`devices/${device.deviceId}`],
      );
      expect(events.rows[0].data).toMatchObject({
        tenantId: tenant,
        deviceId: device.deviceId,
        attestationLevel: 'software',
        joinType: 'joined',
        enrollment: 'join_token',
        joinTokenId,
        actorId: `join-token:${joinTokenId}`,
        certificateSerial: device.certificateSerial,
      });
      expect(JSON.stringify(events.rows[0].data)).not.toContain(token);
    });

    it('registers over HTTP as well (POST /v1/devices)', async () => {
      const { token } = await joinToken(reg, tenant);
      const device = await softwareDevice('P-384');
      const res = await fetch(`${reg.instance.http}/v1/devices`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...registration(tenant, token, device), joinType: 'registered' }),
      });
      expect(res.status).toBe(201);
      const body = (await res.json()) as { device: ProtoDevice; certificatePem: string };
      expect(body.device.status).toBe('DEVICE_STATUS_ACTIVE');
      expect(body.certificatePem).toContain('BEGIN CERTIFICATE');
    });

    it('accepts a user access token with the admin role instead of a join token', async () => {
      const res = await reg.client.registerDevice!(
        registration(tenant, '', await softwareDevice()),
        await reg.as(tenant, ['admin']),
      );
      expect((res.device as ProtoDevice).status).toBe('DEVICE_STATUS_ACTIVE');
      const err = await failure(
        reg.client.registerDevice!(
          registration(tenant, '', await softwareDevice()),
          await reg.as(tenant, ['user']),
        ),
      );
      expect(err).toMatchObject({ code: status.PERMISSION_DENIED, reason: 'PERMISSION_REQUIRED' });
    });

    it('admits exactly one of 50 parallel registrations with a single-use join token', async () => {
      const { token } = await joinToken(reg, tenant, { maxUses: 1 });
      const before = await devicesOf(tenant);
      const devices = await Promise.all(Array.from({ length: 50 }, () => softwareDevice()));
      const results = await Promise.allSettled(
        devices.map((d) => reg.client.registerDevice!(registration(tenant, token, d))),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      expect(ok).toHaveLength(1);
      expect(refused).toHaveLength(49);
      for (const r of refused) {
        expect((r.reason as { code: number }).code).toBe(status.UNAUTHENTICATED);
        expect((r.reason as { metadata: Metadata }).metadata.get('latchkey-reason')[0]).toBe(
          'JOIN_TOKEN_USED',
        );
      }
      expect(await devicesOf(tenant)).toBe(before + 1);
    }, 60_000);

    it('lets an N-use token admit N devices, then refuses', async () => {
      const { token } = await joinToken(reg, tenant, { maxUses: 2 });
      await reg.client.registerDevice!(registration(tenant, token, await softwareDevice()));
      await reg.client.registerDevice!(registration(tenant, token, await softwareDevice()));
      const err = await failure(
        reg.client.registerDevice!(registration(tenant, token, await softwareDevice())),
      );
      expect(err).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'JOIN_TOKEN_USED' });
    });

    it('admits exactly N of 30 parallel registrations with an N-use token, each stored whole', async () => {
      const { token, joinTokenId } = await joinToken(reg, tenant, { maxUses: 7 });
      const devices = await Promise.all(Array.from({ length: 30 }, () => softwareDevice()));
      const results = await Promise.allSettled(
        devices.map((d) => reg.client.registerDevice!(registration(tenant, token, d))),
      );
      const ok = results.flatMap((r) =>
        r.status === 'fulfilled' ? [(r.value.device as ProtoDevice).deviceId] : [],
      );
      expect(ok).toHaveLength(7);
      const rows = await reg.db.query(
        `SELECT d.id, d.device_key_spki, d.device_key_thumbprint, d.certificate_serial,
                c.serial AS cert, e.data AS event
           FROM devices d
           LEFT JOIN device_certificates c ON c.device_id = d.id
           LEFT JOIN outbox_events e ON e.subject = 'devices/' || d.id
                                    AND e.type = 'dev.latchkey.device.registered.v1'
          WHERE d.join_token_id = $1`,
        [joinTokenId],
      );
      expect(rows.rows.map((r: { id: string }) => r.id).sort()).toEqual([...ok].sort());
      for (const row of rows.rows as {
        device_key_spki: Buffer;
        device_key_thumbprint: string;
        certificate_serial: string;
        cert: string;
        event: { certificateSerial: string };
      }[]) {
        expect(createHash('sha256').update(row.device_key_spki).digest('base64url')).toBe(
          row.device_key_thumbprint,
        );
        expect(row.cert).toBe(row.certificate_serial);
        expect(row.event.certificateSerial).toBe(row.certificate_serial);
      }
      const uses = await reg.db.query('SELECT use_count FROM join_tokens WHERE id = $1', [
        joinTokenId,
      ]);
      expect(uses.rows[0].use_count).toBe(7);
    }, 60_000);

    it('applies a device policy another replica changed at once (a cached tenant row is re-checked)', async () => {
      const { token, joinTokenId } = await joinToken(reg, tenant, { maxUses: 5 });
      await reg.client.registerDevice!(registration(tenant, token, await softwareDevice()));
      // Another replica changes the policy: this one's cached tenant row is now stale.
      await reg.db.query('UPDATE tenants SET require_tpm = true WHERE id = $1', [tenant]);
      try {
        const err = await failure(
          reg.client.registerDevice!(registration(tenant, token, await softwareDevice())),
        );
        expect(err).toMatchObject({
          code: status.FAILED_PRECONDITION,
          reason: 'ATTESTATION_REQUIRED',
        });
        const uses = await reg.db.query('SELECT use_count FROM join_tokens WHERE id = $1', [
          joinTokenId,
        ]);
        expect(uses.rows[0].use_count).toBe(1);
      } finally {
        await reg.db.query('UPDATE tenants SET require_tpm = false WHERE id = $1', [tenant]);
      }
      // ... and relaxed again: the refusal was decided on a fresh row, so is the admission.
      const res = await reg.client.registerDevice!(
        registration(tenant, token, await softwareDevice()),
      );
      expect((res.device as ProtoDevice).status).toBe('DEVICE_STATUS_ACTIVE');
    });
  });

  describe('refusals change nothing but the failure event', () => {
    let scratch: string;
    beforeAll(async () => {
      scratch = await newTenant(reg);
    }, 60_000);

    async function refused(
      request: Record<string, unknown>,
      expected: { code: number; reason: string },
      event?: string,
    ) {
      const before = await devicesOf(scratch);
      const failuresBefore = (await failuresOf(scratch)).length;
      const err = await failure(reg.client.registerDevice!(request));
      expect(err).toMatchObject(expected);
      expect(await devicesOf(scratch)).toBe(before);
      const after = await failuresOf(scratch);
      if (event) expect(after.slice(failuresBefore)).toEqual([event]);
      return err;
    }

    it('refuses a malformed CSR (INVALID_ARGUMENT MALFORMED_CSR)', async () => {
      const { token } = await joinToken(reg, scratch);
      const device = await softwareDevice();
      await refused(
        registration(scratch, token, {
          ...device,
          csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----',
        }),
        { code: status.INVALID_ARGUMENT, reason: 'MALFORMED_CSR' },
        'malformed_csr',
      );
    });

    it('refuses a CSR whose signature fails (CSR_SIGNATURE_INVALID), and the token stays unused', async () => {
      const { token } = await joinToken(reg, scratch);
      const device = await softwareDevice();
      const der = Buffer.from(device.csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      der[der.length - 3] ^= 0xff;
      const csrPem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
      await refused(
        registration(scratch, token, { ...device, csrPem }),
        { code: status.INVALID_ARGUMENT, reason: 'CSR_SIGNATURE_INVALID' },
        'csr_signature_invalid',
      );
      await reg.client.registerDevice!(registration(scratch, token, device));
    });

    it.each([
      ['RSA 1024', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024']],
      ['EC P-521', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521']],
      ['Ed25519', ['-algorithm', 'ED25519']],
    ])('refuses a %s device key (KEY_NOT_ALLOWED)', async (_k, args) => {
      const { token } = await joinToken(reg, scratch);
      const { transportPublicKey } = await softwareDevice();
      await refused(
        registration(scratch, token, { csrPem: opensslCsr(args).csrPem, transportPublicKey }),
        { code: status.INVALID_ARGUMENT, reason: 'KEY_NOT_ALLOWED' },
        'key_not_allowed',
      );
    });

    it('refuses a malformed transport key, and one equal to the device key', async () => {
      const { token } = await joinToken(reg, scratch);
      const device = await softwareDevice();
      await refused(
        registration(scratch, token, { ...device, transportPublicKey: '{"kty":"EC"}' }),
        { code: status.INVALID_ARGUMENT, reason: 'MALFORMED_TRANSPORT_KEY' },
        'malformed_transport_key',
      );
      const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', device.keys.publicKey));
      const same = `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64')}\n-----END PUBLIC KEY-----\n`;
      await refused(registration(scratch, token, { ...device, transportPublicKey: same }), {
        code: status.INVALID_ARGUMENT,
        reason: 'TRANSPORT_KEY_NOT_ALLOWED',
      });
    });

    it('refuses oversized fields (INVALID_ARGUMENT) before anything else', async () => {
      const { token } = await joinToken(reg, scratch);
      const device = await softwareDevice();
      const err = await refused(
        registration(scratch, token, device, { displayName: 'x'.repeat(257) }),
        { code: status.INVALID_ARGUMENT, reason: 'INVALID_DEVICE_REGISTRATION' },
      );
      expect(err.message).toContain('displayName');
      await refused(registration(scratch, token, { ...device, csrPem: 'A'.repeat(20000) }), {
        code: status.INVALID_ARGUMENT,
        reason: 'INVALID_DEVICE_REGISTRATION',
      });
    });

    it('refuses an unknown, a used, an expired and a revoked join token (UNAUTHENTICATED)', async () => {
      const device = await softwareDevice();
      await refused(
        registration(scratch, 'lkjt_' + 'A'.repeat(43), device),
        { code: status.UNAUTHENTICATED, reason: 'JOIN_TOKEN_INVALID' },
        'join_token_invalid',
      );
      const used = await joinToken(reg, scratch);
      await reg.client.registerDevice!(registration(scratch, used.token, await softwareDevice()));
      await refused(
        registration(scratch, used.token, device),
        { code: status.UNAUTHENTICATED, reason: 'JOIN_TOKEN_USED' },
        'join_token_exhausted',
      );
      const expired = await joinToken(reg, scratch);
      await reg.db.query(
        `UPDATE join_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`,
        [expired.joinTokenId],
      );
      await refused(
        registration(scratch, expired.token, device),
        { code: status.UNAUTHENTICATED, reason: 'JOIN_TOKEN_EXPIRED' },
        'join_token_expired',
      );
      const revoked = await joinToken(reg, scratch);
      await reg.client.revokeJoinToken!(
        { tenantId: scratch, joinTokenId: revoked.joinTokenId },
        await reg.as(scratch),
      );
      await refused(
        registration(scratch, revoked.token, device),
        { code: status.UNAUTHENTICATED, reason: 'JOIN_TOKEN_REVOKED' },
        'join_token_revoked',
      );
    });

    it("refuses another tenant's join token and a name outside the token's prefix (PERMISSION_DENIED)", async () => {
      const foreign = await joinToken(reg, other);
      await refused(
        registration(scratch, foreign.token, await softwareDevice()),
        { code: status.PERMISSION_DENIED, reason: 'JOIN_TOKEN_TENANT_MISMATCH' },
        'join_token_tenant_mismatch',
      );
      const prefixed = await joinToken(reg, scratch, { deviceNamePrefix: 'KIOSK-' });
      await refused(
        registration(scratch, prefixed.token, await softwareDevice(), { displayName: 'LAPTOP-1' }),
        { code: status.PERMISSION_DENIED, reason: 'DEVICE_NAME_NOT_ALLOWED' },
        'device_name_not_allowed',
      );
      await reg.client.registerDevice!(
        registration(scratch, prefixed.token, await softwareDevice(), { displayName: 'KIOSK-7' }),
      );
    });

    it('refuses an unknown tenant (FAILED_PRECONDITION) and a registration without authorization', async () => {
      const unknown = '00000000-0000-4000-8000-00000000abcd';
      const err = await failure(
        reg.client.registerDevice!(
          registration(unknown, '', await softwareDevice()),
          await reg.as(unknown),
        ),
      );
      expect(err).toMatchObject({ code: status.FAILED_PRECONDITION, reason: 'TENANT_NOT_READY' });
      await refused(registration(scratch, '', await softwareDevice()), {
        code: status.UNAUTHENTICATED,
        reason: 'ENROLLMENT_AUTHORIZATION_REQUIRED',
      });
    });

    it('refuses without a TPM attestation when the tenant requires one (FAILED_PRECONDITION)', async () => {
      const policy = {
        tenantId: scratch,
        requireTpm: true,
        certificateValidityDays: 30,
        tpmRootCertificatesPem: [],
      };
      await reg.client.updateDevicePolicy!({ policy }, await reg.as(scratch));
      try {
        const { token } = await joinToken(reg, scratch);
        await refused(
          registration(scratch, token, await softwareDevice()),
          { code: status.FAILED_PRECONDITION, reason: 'ATTESTATION_REQUIRED' },
          'attestation_required',
        );
      } finally {
        await reg.client.updateDevicePolicy!(
          { policy: { ...policy, requireTpm: false } },
          await reg.as(scratch),
        );
      }
    });
  });

  describe('join tokens', () => {
    it('are stored hashed, listed newest first without their secret, and revocable', async () => {
      const a = await joinToken(reg, other, { maxUses: 3 });
      const b = await joinToken(reg, other, { deviceNamePrefix: 'POS-' });
      const rows = await reg.db.query('SELECT * FROM join_tokens WHERE id = ANY($1::uuid[])', [
        [a.joinTokenId, b.joinTokenId],
      ]);
      expect(JSON.stringify(rows.rows)).not.toContain(a.token.slice(10));
      expect(a.token).toMatch(/^lkjt_[A-Za-z0-9_-]{43}$/);
      const admin = await reg.as(other);
      const page1 = await reg.client.listJoinTokens!({ tenantId: other, pageSize: 1 }, admin);
      const first = (page1.joinTokens as { joinTokenId: string; hint: string }[])[0]!;
      expect(first.joinTokenId).toBe(b.joinTokenId);
      expect(first.hint).toBe(b.token.slice(0, 9));
      expect(JSON.stringify(page1)).not.toContain(b.token);
      const page2 = await reg.client.listJoinTokens!(
        { tenantId: other, pageSize: 1, pageToken: page1.nextPageToken },
        admin,
      );
      expect((page2.joinTokens as { joinTokenId: string }[])[0]!.joinTokenId).toBe(a.joinTokenId);
      const revoked = await reg.client.revokeJoinToken!(
        { tenantId: other, joinTokenId: a.joinTokenId },
        admin,
      );
      expect((revoked.joinToken as { revokeTime: unknown }).revokeTime).toBeTruthy();
    });

    it('are also served over HTTP for admins', async () => {
      const token = (await reg.as(other)).get('authorization')[0] as string;
      const res = await fetch(`${reg.instance.http}/v1/tenants/${other}/join-tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: token },
        body: JSON.stringify({ maxUses: 5, description: 'lab' }),
      });
      expect(res.status).toBe(201);
      const body = (await res.json()) as { token: string; joinToken: { maxUses: number } };
      expect(body.joinToken.maxUses).toBe(5);
      const anon = await fetch(`${reg.instance.http}/v1/tenants/${other}/join-tokens`);
      expect(anon.status).toBe(401);
      expect(anon.headers.get('content-type')).toMatch(/problem\+json/);
    });

    it('refuse a body that is not a JSON object instead of reading it as "all defaults"', async () => {
      const token = (await reg.as(other)).get('authorization')[0] as string;
      const list = async () =>
        (
          (await (
            await fetch(`${reg.instance.http}/v1/tenants/${other}/join-tokens`, {
              headers: { authorization: token },
            })
          ).json()) as { joinTokens: unknown[] }
        ).joinTokens.length;
      const before = await list();
      for (const [type, body] of [
        ['text/plain', 'maxUses=5'],
        ['application/json', '[1,2]'],
      ] as const) {
        const res = await fetch(`${reg.instance.http}/v1/tenants/${other}/join-tokens`, {
          method: 'POST',
          headers: { 'content-type': type, authorization: token },
          body,
        });
        expect(res.status).toBe(400);
        expect(((await res.json()) as { reason: string }).reason).toBe('BODY_NOT_JSON');
      }
      const policy = await fetch(`${reg.instance.http}/v1/tenants/${other}/device-policy`, {
        method: 'PUT',
        headers: { 'content-type': 'text/plain', authorization: token },
        body: 'requireTpm=false',
      });
      expect(policy.status).toBe(400);
      // A body declared in another charset than UTF-8 is refused before it is decoded: one
      // byte of "UTF-16" would decode to nothing, i.e. an empty request of all defaults.
      const policyBefore = await (
        await fetch(`${reg.instance.http}/v1/tenants/${other}/device-policy`, {
          headers: { authorization: token },
        })
      ).text();
      for (const charset of ['utf-16', 'utf-32', 'latin1']) {
        const res = await fetch(`${reg.instance.http}/v1/tenants/${other}/device-policy`, {
          method: 'PUT',
          headers: { 'content-type': `application/json; charset=${charset}`, authorization: token },
          body: '{',
        });
        expect(res.status).toBe(400);
        expect(res.headers.get('content-type')).toMatch(/problem\+json/);
        expect(((await res.json()) as { reason: string }).reason).toBe('UNSUPPORTED_MEDIA_TYPE');
      }
      // An empty body, which the body parser reads as {} ("every field at its default").
      const empty = await fetch(`${reg.instance.http}/v1/tenants/${other}/device-policy`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: token },
      });
      expect(empty.status).toBe(400);
      expect(((await empty.json()) as { reason: string }).reason).toBe('BODY_NOT_JSON');
      // The same, chunked: no Content-Length, an empty body (fetch would send Content-Length: 0).
      const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const r = httpRequest(
          `${reg.instance.http}/v1/tenants/${other}/device-policy`,
          {
            method: 'PUT',
            headers: {
              'content-type': 'application/json',
              'transfer-encoding': 'chunked',
              authorization: token,
            },
          },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        r.on('error', reject);
        r.end();
      });
      expect(chunked.status).toBe(400);
      expect((JSON.parse(chunked.body) as { reason: string }).reason).toBe('BODY_NOT_JSON');
      const policyAfter = await (
        await fetch(`${reg.instance.http}/v1/tenants/${other}/device-policy`, {
          headers: { authorization: token },
        })
      ).text();
      expect(policyAfter).toBe(policyBefore);
      expect(await list()).toBe(before);
    });

    it('serve a device over HTTP to an admin of its tenant only', async () => {
      const res = await fetch(`${reg.instance.http}/v1/tenants/${other}/devices/${randomUUID()}`);
      expect(res.status).toBe(401);
    });
  });

  describe('admin calls and tenant isolation', () => {
    let deviceOfA: string;
    let tokenOfA: string;
    beforeAll(async () => {
      const t = await joinToken(reg, tenant);
      tokenOfA = t.joinTokenId;
      const res = await reg.client.registerDevice!(
        registration(tenant, (await joinToken(reg, tenant)).token, await softwareDevice()),
      );
      deviceOfA = (res.device as ProtoDevice).deviceId;
    });

    it('need an access token (UNAUTHENTICATED) with the admin role (PERMISSION_DENIED)', async () => {
      expect(await failure(reg.client.listDevices!({ tenantId: tenant }))).toMatchObject({
        code: status.UNAUTHENTICATED,
        reason: 'ACCESS_TOKEN_REQUIRED',
      });
      expect(
        await failure(
          reg.client.listDevices!({ tenantId: tenant }, await reg.as(tenant, ['user'])),
        ),
      ).toMatchObject({
        code: status.PERMISSION_DENIED,
        reason: 'ROLE_REQUIRED',
      });
      const forged = new Metadata();
      forged.set('authorization', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.');
      expect(
        await failure(reg.client.createJoinToken!({ tenantId: tenant }, forged)),
      ).toMatchObject({
        code: status.UNAUTHENTICATED,
      });
    });

    it("keep an admin of tenant B away from tenant A's devices and tokens", async () => {
      const adminOfB = await reg.as(other);
      const calls: [string, () => Promise<unknown>][] = [
        ['ListDevices', () => reg.client.listDevices!({ tenantId: tenant }, adminOfB)],
        [
          'DisableDevice',
          () => reg.client.disableDevice!({ tenantId: tenant, deviceId: deviceOfA }, adminOfB),
        ],
        [
          'EnableDevice',
          () => reg.client.enableDevice!({ tenantId: tenant, deviceId: deviceOfA }, adminOfB),
        ],
        [
          'DeleteDevice',
          () => reg.client.deleteDevice!({ tenantId: tenant, deviceId: deviceOfA }, adminOfB),
        ],
        [
          'CreateJoinToken',
          () => reg.client.createJoinToken!({ tenantId: tenant, maxUses: 1 }, adminOfB),
        ],
        ['ListJoinTokens', () => reg.client.listJoinTokens!({ tenantId: tenant }, adminOfB)],
        [
          'RevokeJoinToken',
          () => reg.client.revokeJoinToken!({ tenantId: tenant, joinTokenId: tokenOfA }, adminOfB),
        ],
        ['GetDevicePolicy', () => reg.client.getDevicePolicy!({ tenantId: tenant }, adminOfB)],
      ];
      for (const [name, call] of calls) {
        const err = await failure(call());
        expect([name, err.code, err.reason]).toEqual([
          name,
          status.PERMISSION_DENIED,
          'TENANT_MISMATCH',
        ]);
      }
      // Naming B's tenant with A's ids finds nothing.
      expect(
        await failure(
          reg.client.disableDevice!({ tenantId: other, deviceId: deviceOfA }, adminOfB),
        ),
      ).toMatchObject({ code: status.NOT_FOUND, reason: 'DEVICE_NOT_FOUND' });
      expect(
        await failure(
          reg.client.revokeJoinToken!({ tenantId: other, joinTokenId: tokenOfA }, adminOfB),
        ),
      ).toMatchObject({ code: status.NOT_FOUND, reason: 'JOIN_TOKEN_NOT_FOUND' });
      const list = await reg.client.listDevices!({ tenantId: other, pageSize: 500 }, adminOfB);
      expect((list.devices as ProtoDevice[]).map((d) => d.deviceId)).not.toContain(deviceOfA);
      const device = await reg.client.getDevice!(
        { tenantId: tenant, deviceId: deviceOfA },
        await internalCall('auth', 'registration'),
      );
      expect((device.device as ProtoDevice).status).toBe('DEVICE_STATUS_ACTIVE');
      // The same over HTTP.
      const bearer = adminOfB.get('authorization')[0] as string;
      const res = await fetch(`${reg.instance.http}/v1/tenants/${tenant}/devices`, {
        headers: { authorization: bearer },
      });
      expect(res.status).toBe(403);
    });

    it('let a platform operator act on any tenant', async () => {
      const operator = await reg.as(other, ['operator']);
      const list = await reg.client.listDevices!({ tenantId: tenant, pageSize: 500 }, operator);
      expect((list.devices as ProtoDevice[]).map((d) => d.deviceId)).toContain(deviceOfA);
    });
  });
});
