/**
 * TPM mode of the agent against a software TPM (swtpm, started here): the
 * user key is created inside the TPM with the PIN as its authorization value;
 * provisioning's proof of possession is signed by the TPM; a wrong PIN is
 * counted by the TPM's dictionary-attack protection, which locks out (swtpm's
 * default: 3 failures). Device and transport keys stay in software for now.
 */
import { verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SoftwareTpm, TMP_DIR } from '@latchkey/testing';
import { WrongPinError } from '../src/keystore/pin-sealed-key';
import { TpmLockoutError, TpmUserKeys } from '../src/tpm/tpm-user-key';
import { agent, AgentTenant, freshCode, keySignInServed, portOffset } from './support';

const PIN = 'Tp5-granite-61';
const withKeySignIn = keySignInServed ? it : it.skip;

let tpm: SoftwareTpm;
let work: string;

beforeAll(async () => {
  tpm = await SoftwareTpm.start();
  work = mkdtempSync(join(TMP_DIR, 'agent-tpm-'));
}, 60_000);

afterAll(async () => {
  await tpm?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a user key in the TPM (tpm2-tools)', () => {
  it('signs only with its PIN, and the TPM locks out after its dictionary-attack threshold', async () => {
    const other = await SoftwareTpm.start();
    try {
      const keys = new TpmUserKeys(other.tcti);
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
      await other.stop();
    }
  }, 60_000);
});

describe('latchkey-agent provision --tpm against the real stack', () => {
  let t: AgentTenant;
  let home: string;
  let deviceId: string;

  beforeAll(async () => {
    t = await AgentTenant.create('agent-tpm');
    home = join(work, 'keystore');
  }, 180_000);
  afterAll(() => t?.close());

  const run = (args: string[], input: string[] = []) => agent(home, args, input);

  it('provisions a user key made inside the TPM; the keystore keeps only TPM-wrapped blobs', async () => {
    const reg = await run(
      [
        'register',
        '--tenant',
        t.tenantId,
        '--plaintext',
        '--port-offset',
        String(portOffset()),
        '--json',
      ],
      [await t.joinToken()],
    );
    expect(reg.stderr).toBe('');
    deviceId = (JSON.parse(reg.stdout) as { deviceId: string }).deviceId;
    const r = await run(
      ['provision', '--tpm', '--tcti', tpm.tcti, '--user', 'alice', '--json'],
      [t.alice.password, await freshCode(t.alice.totpSecret), PIN, PIN],
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { credentialId: string; storage: string };
    expect(out.storage).toBe('tpm');
    expect(await t.credentialsOf(deviceId)).toEqual([
      expect.objectContaining({
        credentialId: out.credentialId,
        status: 'CREDENTIAL_STATUS_ACTIVE',
      }),
    ]);
    const stored = JSON.parse(readFileSync(join(home, 'user-key.json'), 'utf8')) as {
      storage: string;
      sealed?: unknown;
      tpm: { tcti: string; private: string };
    };
    expect(stored).toMatchObject({ storage: 'tpm', tpm: { tcti: tpm.tcti } });
    expect(stored.sealed).toBeUndefined();
    expect(readFileSync(join(home, 'user-key.json'), 'utf8')).not.toContain(PIN);
  }, 120_000);

  it('refuses a wrong PIN in the TPM, then reports the TPM lockout', async () => {
    const first = await run(['login'], ['Wr0ng-pin-77']);
    expect(first.code).toBe(4);
    expect(first.stderr).toMatch(/wrong PIN \(counted by the TPM/);
    let last = first;
    for (let i = 0; i < 4; i++) last = await run(['login'], ['Wr0ng-pin-77']);
    expect(last.code).toBe(4);
    expect(last.stderr).toMatch(/locked out after too many wrong PINs/);
    const s = await run(['status']);
    expect(s.stdout).toMatch(/pin +checked by the TPM/);
  }, 60_000);

  withKeySignIn(
    'logs in with the TPM key (on a fresh TPM state the PIN is accepted)',
    async () => {
      // The lockout above lasts the TPM's recovery time; a new device on a new TPM signs in.
      const fresh = await SoftwareTpm.start();
      const h = join(work, 'keystore-2');
      try {
        await agent(
          h,
          [
            'register',
            '--tenant',
            t.tenantId,
            '--plaintext',
            '--port-offset',
            String(portOffset()),
          ],
          [await t.joinToken()],
        );
        const p = await agent(
          h,
          ['provision', '--tpm', '--tcti', fresh.tcti, '--user', 'alice'],
          [t.alice.password, await freshCode(t.alice.totpSecret), PIN, PIN],
        );
        expect(p.code).toBe(0);
        const r = await agent(h, ['login', '--json'], [PIN]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect((JSON.parse(r.stdout) as { accessToken: { sub: string } }).accessToken.sub).toBe(
          t.alice.userId,
        );
      } finally {
        await fresh.stop();
      }
    },
    120_000,
  );
});
