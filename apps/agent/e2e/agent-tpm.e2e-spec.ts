/**
 * TPM mode of the agent against a software TPM (swtpm, started here) and the
 * real stack, through the built CLI. The device's provisioning left an AIK at
 * a persistent handle and an AIK CA certified it (here: the test's TPM root,
 * configured on the tenant for registration and provisioning, both requiring
 * TPM). `register --tpm` makes the device and transport keys in the TPM and
 * registers with the AIK's attestation of the device key (level tpm); the
 * user key is made in the TPM with the PIN as its authorization value and
 * attested too; every device assertion is signed by the TPM's device key and
 * the session key is unwrapped by its transport key. The whole journey:
 * register → provision → login → refresh → admin revokes → login refused →
 * reset-pin → login, then the TPM's dictionary-attack lockout and the tenant's
 * audit trail in order, its chain verified.
 */
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  internalCall,
  LOG_DIR,
  SoftwareTpm,
  TMP_DIR,
  tpmRootAndAikCertificate,
} from '@latchkey/testing';
import { WrongPinError } from '../src/keystore/pin-sealed-key';
import { TpmLockoutError, TpmUserKeys } from '../src/tpm/tpm-user-key';
import {
  agent,
  AgentTenant,
  auditTrail,
  bearer,
  expectRefreshRotatesPrt,
  freshCode,
  portOffset,
  storedSession,
  verifyAuditTrail,
} from './support';

const PIN = 'Tp5-granite-61';
const NEW_PIN = 'Kw8-harbour-23';
const WRONG_PIN = 'Wr0ng-pin-77';

let work: string;

beforeAll(() => {
  work = mkdtempSync(join(TMP_DIR, 'agent-tpm-'));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a user key in the TPM (tpm2-tools)', () => {
  it('signs only with its PIN, and the TPM locks out after its dictionary-attack threshold', async () => {
    const tpm = await SoftwareTpm.start();
    try {
      const keys = new TpmUserKeys(tpm.tcti);
      const { blobs, publicKey } = keys.create(PIN);
      const sig = keys.sign(blobs, PIN, Buffer.from('challenge'));
      expect(
        verify(
          'sha256',
          Buffer.from('challenge'),
          { key: publicKey, dsaEncoding: 'ieee-p1363' },
          sig,
        ),
      ).toBe(true);
      expect(() => keys.sign(blobs, 'not-the-pin', Buffer.from('x'))).toThrow(WrongPinError);
      const outcomes: string[] = [];
      for (let i = 0; i < 4; i++) {
        try {
          keys.sign(blobs, 'not-the-pin', Buffer.from('x'));
        } catch (err) {
          outcomes.push((err as Error).name);
        }
      }
      expect(outcomes).toContain('TpmLockoutError');
      // In lockout even the right PIN is refused.
      expect(() => keys.sign(blobs, PIN, Buffer.from('x'))).toThrow(TpmLockoutError);
    } finally {
      await tpm.stop();
    }
  }, 60_000);
});

describe('latchkey-agent in TPM mode: the whole journey against the real stack', () => {
  let tpm: SoftwareTpm;
  let t: AgentTenant;
  let home: string;
  let aikCert: string;
  let rootSubject: string;
  let deviceId: string;
  let credentialId: string;

  const common = ['--plaintext', '--port-offset', String(portOffset())];
  const run = (args: string[], input: string[] = []) => agent(home, args, input);
  const register = async (keystore: string, extra: string[]) =>
    agent(
      keystore,
      ['register', '--tenant', t.tenantId, '--tpm', '--tcti', tpm.tcti, ...common, ...extra],
      [await t.joinToken()],
    );

  beforeAll(async () => {
    tpm = await SoftwareTpm.start();
    const aik = await tpmRootAndAikCertificate(tpm.persistAik('0x81010002'));
    rootSubject = aik.rootSubject;
    aikCert = join(work, 'aik.pem');
    writeFileSync(aikCert, aik.aikPem);
    home = join(work, 'keystore');
    t = await AgentTenant.create('agent-tpm');
    // The tenant's admin trusts the TPM root and requires TPM for devices and user keys.
    const admin = bearer(await t.adminToken());
    const device = await t.registration.getDevicePolicy!({ tenantId: t.tenantId }, admin);
    await t.registration.updateDevicePolicy!(
      {
        policy: {
          ...(device.policy as object),
          requireTpm: true,
          tpmRootCertificatesPem: [aik.rootPem],
        },
      },
      admin,
    );
    const keys = await t.provisioning.getKeyPolicy!({ tenantId: t.tenantId }, admin);
    await t.provisioning.updateKeyPolicy!(
      {
        policy: {
          ...(keys.policy as object),
          requireTpm: true,
          tpmRootCertificatesPem: [aik.rootPem],
        },
      },
      admin,
    );
  }, 180_000);

  afterAll(async () => {
    t?.close();
    await tpm?.stop();
  });

  it('refuses register --tpm without the AIK certificate, or with one for another key, before any request', async () => {
    const none = await register(join(work, 'no-aik'), []);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/register --tpm needs --aik-cert <file>/);
    const other = join(work, 'other-aik.pem');
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    writeFileSync(
      other,
      (await tpmRootAndAikCertificate(stranger.export({ type: 'spki', format: 'der' }) as Buffer))
        .aikPem,
    );
    const wrong = await register(join(work, 'wrong-aik'), ['--aik-cert', other]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(
      /the AIK certificate \(--aik-cert\) is not for the key at 0x81010002/,
    );
    const soft = await agent(
      join(work, 'software'),
      ['register', '--tenant', t.tenantId, ...common],
      [await t.joinToken()],
    );
    // The tenant requires TPM: a software device is refused by registration.
    expect(soft.code).toBe(1);
    expect(soft.stderr).toMatch(/registration refused RegisterDevice/);
  }, 120_000);

  it('registers with the device and transport keys made in the TPM: attestation level tpm, only wrapped blobs kept', async () => {
    const r = await register(home, ['--aik-cert', aikCert, '--name', 'LINUX-TPM-1', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { deviceId: string; attestationLevel: string };
    expect(out.attestationLevel).toBe('ATTESTATION_LEVEL_TPM');
    deviceId = out.deviceId;
    const { device } = (await t.registration.getDevice!(
      { tenantId: t.tenantId, deviceId },
      await internalCall('auth', 'registration'),
    )) as {
      device: { status: string; attestationLevel: string };
    };
    expect(device).toMatchObject({
      status: 'DEVICE_STATUS_ACTIVE',
      attestationLevel: 'ATTESTATION_LEVEL_TPM',
    });
    expect(readdirSync(home).sort()).toEqual(['device.json', 'tpm-device-keys.json']);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(home)) expect(statSync(join(home, f)).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(join(home, 'tpm-device-keys.json'), 'utf8')) as {
      tcti: string;
      aik: { handle: string };
      deviceKey: { private: string };
    };
    expect(stored).toMatchObject({ tcti: tpm.tcti, aik: { handle: '0x81010002' } });
    expect(readFileSync(join(home, 'tpm-device-keys.json'), 'utf8')).not.toMatch(/PRIVATE KEY/);
    expect(JSON.parse(readFileSync(join(home, 'device.json'), 'utf8'))).toMatchObject({
      storage: 'tpm',
    });
  }, 120_000);

  it('provisions a user key made in the TPM under the PIN, attested by the AIK: credential level tpm', async () => {
    const r = await run(
      ['provision', '--user', 'alice', '--json'],
      [t.alice.password, await freshCode(t.alice.totpSecret), PIN, PIN],
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { credentialId: string; storage: string };
    expect(out.storage).toBe('tpm');
    credentialId = out.credentialId;
    expect(await t.credentialsOf(deviceId)).toEqual([
      expect.objectContaining({
        credentialId,
        status: 'CREDENTIAL_STATUS_ACTIVE',
        attestationLevel: 'ATTESTATION_LEVEL_TPM',
        attestationIssuer: rootSubject,
      }),
    ]);
    const stored = JSON.parse(readFileSync(join(home, 'user-key.json'), 'utf8')) as {
      storage: string;
      sealed?: unknown;
    };
    expect(stored).toMatchObject({ storage: 'tpm', tpm: { tcti: tpm.tcti } });
    expect(stored.sealed).toBeUndefined();
    for (const f of readdirSync(home))
      expect(readFileSync(join(home, f)).includes(Buffer.from(PIN))).toBe(false);
  }, 120_000);

  it('logs in: the TPM signs for the device and (with the PIN) the user, and unwraps the session key', async () => {
    const r = await run(['login', '--json'], [PIN]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { accessToken: Record<string, unknown> };
    expect(out.accessToken).toMatchObject({
      sub: t.alice.userId,
      tid: t.tenantId,
      did: deviceId,
      cid: credentialId,
    });
    expect(Buffer.from(storedSession(home).sessionKey, 'base64url')).toHaveLength(32);
  }, 60_000);

  it('refreshes with the PRT (proof keyed from the session key the TPM unwrapped)', async () => {
    await expectRefreshRotatesPrt(home);
  }, 60_000);

  it('refuses the login once an admin revoked the key', async () => {
    await t.provisioning.revokeCredential!(
      { tenantId: t.tenantId, credentialId, reason: 'agent TPM e2e: lost laptop' },
      bearer(await t.adminToken()),
    );
    const r = await run(['login'], [PIN]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sign-in refused: the key may be revoked/);
  }, 60_000);

  it('resets the PIN: a new attested key in the TPM after password + TOTP, the old one revoked', async () => {
    const r = await run(
      ['reset-pin', '--user', 'alice', '--json'],
      [t.alice.password, await freshCode(t.alice.totpSecret), NEW_PIN, NEW_PIN],
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { credentialId: string; storage: string };
    expect(out.storage).toBe('tpm');
    expect(out.credentialId).not.toBe(credentialId);
    expect(await t.credentialsOf(deviceId)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          credentialId: out.credentialId,
          status: 'CREDENTIAL_STATUS_ACTIVE',
          attestationLevel: 'ATTESTATION_LEVEL_TPM',
        }),
        expect.objectContaining({ credentialId, status: 'CREDENTIAL_STATUS_REVOKED' }),
      ]),
    );
    credentialId = out.credentialId;
  }, 120_000);

  it('logs in with the new PIN after the reset', async () => {
    const r = await run(['login', '--json'], [NEW_PIN]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { accessToken: { cid: string } }).accessToken.cid).toBe(
      credentialId,
    );
  }, 60_000);

  it("counts wrong PINs in the TPM until its lockout; the device's own keys keep working", async () => {
    const first = await run(['login'], [WRONG_PIN]);
    expect(first.code).toBe(4);
    expect(first.stderr).toMatch(/wrong PIN \(counted by the TPM/);
    let last = first;
    for (let i = 0; i < 4; i++) last = await run(['login'], [WRONG_PIN]);
    expect(last.code).toBe(4);
    expect(last.stderr).toMatch(/locked out after too many wrong PINs/);
    const s = await run(['status']);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/pin +checked by the TPM/);
    // The device key (noda) still signs in lockout: unregister proves the device to provisioning.
    const u = await run(['unregister', '--json']);
    expect(u.stderr).toBe('');
    expect(u.code).toBe(0);
    expect((JSON.parse(u.stdout) as { deletedCredential: string }).deletedCredential).toBe(
      credentialId,
    );
    expect(readdirSync(home)).toEqual([]);
  }, 120_000);

  it('left no PIN in the services’ logs', () => {
    const files = readdirSync(LOG_DIR).map((f) => join(LOG_DIR, f));
    for (const pin of [PIN, NEW_PIN, WRONG_PIN])
      for (const f of files) expect(readFileSync(f).includes(Buffer.from(pin))).toBe(false);
  });

  it("has the journey in the tenant's audit trail, in order, and its chain verifies", async () => {
    const trail = await auditTrail(t, home, 'dev.latchkey.credential.deleted.v1');
    expect(trail.map((x) => x.seq)).toEqual(trail.map((_x, i) => i + 1));
    const codes = trail.map((x) => x.record.metadata.event_code);
    // Each step of the journey after the one before it.
    const steps = [
      'dev.latchkey.auth.tenant.created.v1',
      'dev.latchkey.device.registered.v1',
      'dev.latchkey.credential.provisioned.v1',
      'dev.latchkey.auth.sign_in.succeeded.v1',
      'dev.latchkey.auth.token.refreshed.v1',
      'dev.latchkey.credential.revoked.v1',
      'dev.latchkey.auth.sign_in.failed.v1',
      'dev.latchkey.credential.provisioned.v1',
      'dev.latchkey.auth.sign_in.succeeded.v1',
      'dev.latchkey.credential.deleted.v1',
    ];
    let at = -1;
    const inOrder = steps.map((step) => [step, (at = codes.indexOf(step, at + 1)) >= 0]);
    expect(inOrder).toEqual(steps.map((step) => [step, true]));

    const v = await verifyAuditTrail(t, join(work, 'admin'));
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`^ok      ${t.tenantId}  seq 1\\.\\.\\d+`, 'm'));
    expect(v.stdout).toMatch(/^VERIFIED$/m);
  }, 300_000);
});
