import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeystoreError, SoftwareKeystore } from './software-keystore';

const FAST_SCRYPT = { N: 2 ** 10, r: 8, p: 1 };
const PIN = '482915';

let dir: string;
let clock: number;

function keystore(): SoftwareKeystore {
  return new SoftwareKeystore(join(dir, 'ks'), { now: () => clock, scrypt: FAST_SCRYPT });
}

function provisioned(ks = keystore()) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  ks.storeUserKey(
    {
      credentialId: 'cred-1',
      userId: 'user-1',
      username: 'alice',
      algorithm: 'ES256',
      publicKeyJwk: publicKey.export({ format: 'jwk' }) as Record<string, unknown>,
      storage: 'software',
      createdAt: new Date(clock).toISOString(),
    },
    privateKey,
    PIN,
  );
  return { ks, publicKey };
}

function failure(fn: () => unknown): KeystoreError {
  try {
    fn();
  } catch (err) {
    if (err instanceof KeystoreError) return err;
    throw err;
  }
  throw new Error('expected a KeystoreError');
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-agent-ks-'));
  clock = Date.parse('2026-11-25T12:00:00Z');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('software keystore', () => {
  it('keeps its folder 0700 and every file 0600', () => {
    const { ks } = provisioned();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    ks.saveDeviceKeys(privateKey, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    ks.saveDevice({ deviceId: 'd' });
    ks.saveSession({ refreshToken: 'prt' });
    expect(statSync(ks.dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(ks.dir);
    expect(files.sort()).toEqual([
      'device-key.pem',
      'device.json',
      'pin-state.json',
      'session.json',
      'transport-key.pem',
      'user-key.json',
    ]);
    for (const f of files) expect(statSync(join(ks.dir, f)).mode & 0o777).toBe(0o600);
  });

  it('tightens a keystore folder that others can read', () => {
    const ks = keystore();
    ks.ensureFolder();
    chmodSync(ks.dir, 0o755);
    ks.ensureFolder();
    expect(statSync(ks.dir).mode & 0o777).toBe(0o700);
  });

  it('refuses to read a key file that others can read', () => {
    const { ks } = provisioned();
    chmodSync(join(ks.dir, 'user-key.json'), 0o644);
    expect(failure(() => ks.unlockUserKey(PIN)).code).toBe('KEYSTORE_UNSAFE');
  });

  it('unlocks the user key with the right PIN: it signs what its public key verifies', () => {
    const { ks, publicKey } = provisioned();
    const { privateKey, record } = ks.unlockUserKey(PIN);
    const sig = sign('sha256', Buffer.from('challenge'), privateKey);
    expect(verify('sha256', Buffer.from('challenge'), publicKey, sig)).toBe(true);
    expect(record.credentialId).toBe('cred-1');
  });

  it('stores neither the PIN nor the private key in clear in any file', () => {
    const { ks } = provisioned();
    const { privateKey } = ks.unlockUserKey(PIN);
    const d = (privateKey.export({ format: 'jwk' }) as { d: string }).d;
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    for (const f of readdirSync(ks.dir)) {
      const bytes = readFileSync(join(ks.dir, f));
      const text = bytes.toString('utf8');
      expect(text).not.toContain(PIN);
      expect(text).not.toContain(d);
      expect(text).not.toContain(pkcs8.toString('base64url'));
      expect(text).not.toContain(pkcs8.toString('base64'));
      expect(bytes.includes(pkcs8)).toBe(false);
    }
  });

  it('counts wrong PINs and lets the right one reset the count before the lock', () => {
    const { ks } = provisioned();
    for (let i = 1; i <= 4; i++) {
      const err = failure(() => ks.unlockUserKey('000001'));
      expect(err.code).toBe('WRONG_PIN');
      expect(ks.pinState().failures).toBe(i);
    }
    ks.unlockUserKey(PIN);
    expect(ks.pinState()).toEqual({ failures: 0, lockedUntil: 0, destroyed: false });
  });

  it('locks the PIN after 5 wrong attempts, with a delay that grows with each further one', () => {
    const { ks } = provisioned();
    for (let i = 0; i < 4; i++) failure(() => ks.unlockUserKey('000001'));
    const fifth = failure(() => ks.unlockUserKey('000001'));
    expect(fifth.code).toBe('WRONG_PIN');
    expect(fifth.details.retryAfterSeconds).toBe(30);
    // Locked: even the right PIN is not tried, and the attempt is not counted.
    const locked = failure(() => ks.unlockUserKey(PIN));
    expect(locked.code).toBe('PIN_LOCKED');
    expect(locked.details.retryAfterSeconds).toBe(30);
    expect(ks.pinState().failures).toBe(5);
    clock += 29_000;
    expect(failure(() => ks.unlockUserKey(PIN)).code).toBe('PIN_LOCKED');
    clock += 1_000;
    const sixth = failure(() => ks.unlockUserKey('000001'));
    expect(sixth.details.retryAfterSeconds).toBe(60);
    clock += 60_000;
    const seventh = failure(() => ks.unlockUserKey('000001'));
    expect(seventh.details.retryAfterSeconds).toBe(120);
    expect(seventh.details.attemptsLeft).toBe(3);
    clock += 120_000;
    // The right PIN after the wait still works and clears the count.
    ks.unlockUserKey(PIN);
    expect(ks.pinState().failures).toBe(0);
  });

  it('destroys the user key and its session after 10 wrong PINs; only a reset helps', () => {
    const { ks } = provisioned();
    ks.saveSession({ refreshToken: 'prt' });
    let last: KeystoreError | undefined;
    for (let i = 1; i <= 10; i++) {
      last = failure(() => ks.unlockUserKey('000001'));
      clock += ks.delayAfter(i) * 1000;
    }
    expect(last!.code).toBe('KEY_DESTROYED');
    expect(ks.has('userKey')).toBe(false);
    expect(ks.has('session')).toBe(false);
    expect(ks.pinState().destroyed).toBe(true);
    expect(failure(() => ks.unlockUserKey(PIN)).code).toBe('KEY_DESTROYED');
    // A reset (a newly provisioned key) clears the state.
    provisioned(ks);
    expect(ks.unlockUserKey(PIN).record.username).toBe('alice');
  });

  it('counts an attempt before checking it, so a killed check still costs a try', () => {
    const { ks } = provisioned();
    const seen: number[] = [];
    expect(() =>
      ks.attemptPin(() => {
        seen.push(ks.pinState().failures);
        throw new Error('killed');
      }),
    ).toThrow('killed');
    expect(seen).toEqual([1]);
  });

  it('says the device is not registered when there is no device file', () => {
    expect(failure(() => keystore().loadDevice()).code).toBe('NOT_REGISTERED');
  });

  it('wipes every file on unregister', () => {
    const { ks } = provisioned();
    ks.saveDevice({ deviceId: 'd' });
    ks.wipeAll();
    expect(readdirSync(ks.dir)).toEqual([]);
  });
});
