/**
 * The device agent's journey against the real stack, driving the built CLI as a
 * child process: a fresh tenant, admin and user (TOTP enrolled through the API),
 * register with a join token, provision (password + TOTP + PIN), login and
 * refresh (key sign-in), status, an admin revocation refusing the next login,
 * reset-pin, unregister, and `audit tail` / `audit verify` of the tenant's
 * trail. The journey runs over each transport (gRPC, and the services' HTTPS
 * JSON APIs in plaintext: the services do not serve TLS themselves); the
 * agent's traffic goes through recording relays, to show the PIN never leaves
 * the device.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  eventually,
  grpcAddress,
  httpBase,
  internalCall,
  LOG_DIR,
  TMP_DIR,
} from '@latchkey/testing';
import {
  agent,
  AgentTenant,
  bearer,
  auditTrail,
  expectRefreshRotatesPrt,
  freshCode,
  portOffset,
  RecordingRelay,
  storedSession,
  verifyAuditTrail,
} from './support';

const PIN = 'Qv7-lantern-42';
const NEW_PIN = 'Hx3-orchard-95';
const WRONG_PIN = 'Zt9-meadow-17';

type Relayed = 'registration' | 'provisioning' | 'auth';
const RELAYED: Relayed[] = ['registration', 'provisioning', 'auth'];

describe.each(['grpc', 'https'] as const)(
  'latchkey-agent over %s against the real stack',
  (transport) => {
    let home: string;
    let t: AgentTenant;
    let relays: Record<Relayed, RecordingRelay>;
    let deviceId: string;
    let credentialId: string;
    const over = ['--transport', transport];

    /** Where the relays send what they record: each service's gRPC or HTTP port. */
    function target(s: Relayed) {
      const port =
        transport === 'grpc'
          ? Number(grpcAddress(s).split(':')[1])
          : Number(new URL(httpBase(s)).port);
      return { host: '127.0.0.1', port };
    }

    /** The agent with the test profile's services, its calls through the recording relays. */
    function run(args: string[], input: string[] = []) {
      const through = RELAYED.flatMap((s) =>
        transport === 'grpc'
          ? [`--${s}-addr`, relays[s].address]
          : [`--${s}-url`, `http://${relays[s].address}`],
      );
      const flags =
        args[0] === 'register'
          ? [...over, '--plaintext', '--port-offset', String(portOffset()), ...through]
          : [];
      return agent(home, [...args, ...flags], input);
    }

    beforeAll(async () => {
      home = join(mkdtempSync(join(TMP_DIR, `agent-${transport}-`)), 'keystore');
      relays = {
        registration: await RecordingRelay.start(target('registration')),
        provisioning: await RecordingRelay.start(target('provisioning')),
        auth: await RecordingRelay.start(target('auth')),
      };
      t = await AgentTenant.create(`agent-${transport}`);
    }, 180_000);

    afterAll(async () => {
      t?.close();
      await Promise.all(Object.values(relays ?? {}).map((r) => r.close()));
      if (home) rmSync(join(home, '..'), { recursive: true, force: true });
    });

    it('registers the device with a join token: device active, keys in a 0700 keystore of 0600 files', async () => {
      const joinToken = await t.joinToken();
      const r = await run(
        ['register', '--tenant', t.tenantId, '--name', 'LINUX-AGENT-1', '--json'],
        [joinToken],
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      deviceId = (JSON.parse(r.stdout) as { deviceId: string }).deviceId;
      const { device } = (await t.registration.getDevice!(
        { tenantId: t.tenantId, deviceId },
        await internalCall('auth', 'registration'),
      )) as {
        device: { status: string; attestationLevel: string; displayName: string };
      };
      expect(device).toMatchObject({
        status: 'DEVICE_STATUS_ACTIVE',
        attestationLevel: 'ATTESTATION_LEVEL_SOFTWARE',
        displayName: 'LINUX-AGENT-1',
      });
      expect(statSync(home).mode & 0o777).toBe(0o700);
      for (const f of readdirSync(home)) expect(statSync(join(home, f)).mode & 0o777).toBe(0o600);
      // The join token was used up: a second device cannot join with it.
      const again = await agent(
        join(home, '..', 'second'),
        [
          'register',
          '--tenant',
          t.tenantId,
          ...over,
          '--plaintext',
          '--port-offset',
          String(portOffset()),
        ],
        [joinToken],
      );
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/registration refused RegisterDevice/);
    }, 60_000);

    it('provisions a user key after password + TOTP, sealed under a new PIN', async () => {
      const r = await run(
        ['provision', '--user', 'alice', '--json'],
        [t.alice.password, await freshCode(t.alice.totpSecret), PIN, PIN],
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as {
        credentialId: string;
        userId: string;
        algorithm: string;
      };
      expect(out).toMatchObject({ userId: t.alice.userId, algorithm: 'ES256' });
      credentialId = out.credentialId;
      expect(await t.credentialsOf(deviceId)).toEqual([
        expect.objectContaining({ credentialId, status: 'CREDENTIAL_STATUS_ACTIVE' }),
      ]);
      expect(statSync(join(home, 'user-key.json')).mode & 0o777).toBe(0o600);
    }, 120_000);

    it('refuses a wrong PIN on the device, counts it, and tells how many attempts are left', async () => {
      const r = await run(['login'], [WRONG_PIN]);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/wrong PIN \(1 of 5 before the PIN locks\)/);
      const s = await run(['status', '--json']);
      expect((JSON.parse(s.stdout) as { pin: { failures: number } }).pin.failures).toBe(1);
    }, 60_000);

    it('logs in with the PIN: key sign-in, PRT and session key stored, token claims printed', async () => {
      const r = await run(['login', '--json'], [PIN]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as {
        sessionId: string;
        accessToken: Record<string, unknown>;
      };
      expect(out.accessToken).toMatchObject({
        sub: t.alice.userId,
        tid: t.tenantId,
        did: deviceId,
        cid: credentialId,
      });
      expect(out.accessToken.amr).toEqual(expect.arrayContaining(['swk']));
      expect(r.stdout).not.toMatch(/eyJ/); // claims, never the tokens themselves
      expect(Buffer.from(storedSession(home).sessionKey, 'base64url')).toHaveLength(32);
      const s = JSON.parse((await run(['status', '--json'])).stdout) as {
        pin: { failures: number };
      };
      expect(s.pin.failures).toBe(0);
    }, 60_000);

    it('refreshes with the PRT and stores the rotated one', async () => {
      await expectRefreshRotatesPrt(home);
      expect((await run(['refresh'])).code).toBe(0);
    }, 60_000);

    it('reports status: device, key, PIN and server reachability', async () => {
      const r = await run(['status', '--json']);
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout) as {
        device: { deviceId: string; status: string };
        key: { credentialId: string; username: string };
        server: Record<string, { reachable: boolean }>;
      };
      // The device reads its own record with a device assertion (GetSelfDevice; over HTTPS
      // GET /v1/devices/self), on either transport.
      expect(s.device).toMatchObject({ deviceId, status: 'active' });
      expect(s.key).toMatchObject({ credentialId, username: 'alice' });
      expect(s.server.registration!.reachable).toBe(true);
      expect(s.server.auth!.reachable).toBe(true);
      expect(r.stdout).not.toMatch(/eyJ/); // the assertion is sent, never printed
    }, 60_000);

    it('reports the real status once an admin disabled the device, and active again once enabled', async () => {
      const ids = { tenantId: t.tenantId, deviceId };
      const admin = bearer(await t.adminToken());
      const deviceStatus = async () => {
        const r = await run(['status', '--json']);
        expect(r.code).toBe(0);
        return (JSON.parse(r.stdout) as { device: { status: string } }).device.status;
      };
      await t.registration.disableDevice!({ ...ids, reason: 'agent e2e: status' }, admin);
      try {
        expect(await deviceStatus()).toBe('disabled');
        expect((await run(['status'])).stdout).toMatch(/: disabled, software keystore/);
      } finally {
        await t.registration.enableDevice!(ids, admin);
      }
      expect(await deviceStatus()).toBe('active');
      // Disabling suspended the user key in provisioning; the later steps need it active again.
      await eventually(
        async () =>
          (await t.credentialsOf(deviceId)).find(
            (c) => c.credentialId === credentialId && c.status === 'CREDENTIAL_STATUS_ACTIVE',
          ),
        { what: 'the user key active again after the device was enabled', timeoutMs: 30_000 },
      );
    }, 90_000);

    it('refuses the login once an admin revoked the key, with a clear message', async () => {
      await t.provisioning.revokeCredential!(
        { tenantId: t.tenantId, credentialId, reason: 'agent e2e: lost laptop' },
        bearer(await t.adminToken()),
      );
      const r = await run(['login'], [PIN]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/sign-in refused: the key may be revoked/);
    }, 60_000);

    it('resets the PIN destructively: a new key after password + TOTP, the old one revoked', async () => {
      const r = await run(
        ['reset-pin', '--user', 'alice', '--json'],
        [t.alice.password, await freshCode(t.alice.totpSecret), NEW_PIN, NEW_PIN],
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { credentialId: string };
      expect(out.credentialId).not.toBe(credentialId);
      const creds = await t.credentialsOf(deviceId);
      expect(creds).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            credentialId: out.credentialId,
            status: 'CREDENTIAL_STATUS_ACTIVE',
          }),
          expect.objectContaining({ credentialId, status: 'CREDENTIAL_STATUS_REVOKED' }),
        ]),
      );
      credentialId = out.credentialId;
      // The old PIN no longer opens anything.
      expect((await run(['login'], [PIN])).code).toBe(4);
    }, 120_000);

    it('logs in with the new PIN after the reset', async () => {
      const r = await run(['login', '--json'], [NEW_PIN]);
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as { accessToken: { cid: string } }).accessToken.cid).toBe(
        credentialId,
      );
    }, 60_000);

    it(`never lets a PIN leave the device: not in the keystore, the services' logs or the ${transport} traffic`, async () => {
      const traffic = Buffer.concat(Object.values(relays).map((r) => r.bytes()));
      // The capture works: the transport's own framing and the password (to auth, in
      // SignInWithPassword) do travel through the relays.
      const framing = transport === 'grpc' ? 'PRI * HTTP/2.0' : 'POST /v1/token';
      expect(traffic.includes(Buffer.from(framing))).toBe(true);
      expect(traffic.includes(Buffer.from(t.alice.password))).toBe(true);
      const files = [
        ...readdirSync(home).map((f) => join(home, f)),
        ...readdirSync(LOG_DIR).map((f) => join(LOG_DIR, f)),
      ];
      for (const pin of [PIN, NEW_PIN, WRONG_PIN]) {
        expect(traffic.includes(Buffer.from(pin))).toBe(false);
        for (const f of files) expect(readFileSync(f).includes(Buffer.from(pin))).toBe(false);
      }
    }, 60_000);

    it('unregisters: deletes the user key on the server and wipes the keystore', async () => {
      const r = await run(['unregister', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(readdirSync(home)).toEqual([]);
      const creds = await t.credentialsOf(deviceId);
      expect(creds.find((c) => c.credentialId === credentialId)).toBeUndefined();
      const s = await run(['status']);
      expect(s.code).toBe(1);
      expect(s.stderr).toMatch(/not registered/);
    }, 60_000);

    it("tails and verifies the tenant's audit trail, in order", async () => {
      const trail = await auditTrail(t, home, 'dev.latchkey.credential.deleted.v1', over);
      expect(trail.map((x) => x.seq)).toEqual(trail.map((_x, i) => i + 1));
      const order = trail.map((x) => x.record.metadata.event_code);
      const at = (t: string) => order.indexOf(t);
      expect(at('dev.latchkey.auth.tenant.created.v1')).toBeGreaterThanOrEqual(0);
      expect(at('dev.latchkey.device.registered.v1')).toBeGreaterThan(
        at('dev.latchkey.auth.tenant.created.v1'),
      );
      expect(at('dev.latchkey.credential.provisioned.v1')).toBeGreaterThan(
        at('dev.latchkey.device.registered.v1'),
      );
      expect(at('dev.latchkey.credential.revoked.v1')).toBeGreaterThan(
        at('dev.latchkey.credential.provisioned.v1'),
      );
      expect(at('dev.latchkey.credential.deleted.v1')).toBeGreaterThan(
        at('dev.latchkey.credential.revoked.v1'),
      );

      // An admin signs in with password + TOTP for the verification.
      const v = await verifyAuditTrail(t, home, over);
      expect(v.stderr).toBe('');
      expect(v.code).toBe(0);
      expect(v.stdout).toMatch(new RegExp(`^ok      ${t.tenantId}  seq 1\\.\\.\\d+`, 'm'));
      expect(v.stdout).toMatch(/^VERIFIED$/m);
    }, 300_000);
  },
);
