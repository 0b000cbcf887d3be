/**
 * The agent's keystore folder (0700, every file 0600, written atomically): the
 * device's state and keys, the user key sealed under the PIN, the PIN's
 * failure counter (anti-hammering) and the session. In software mode the
 * anti-hammering counter is only as strong as the folder's permissions: a TPM
 * (--tpm) enforces it in hardware.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  DEFAULT_SCRYPT,
  openSealedKey,
  type ScryptParameters,
  sealKey,
  type SealedKey,
  WrongPinError,
} from './pin-sealed-key';
import type { DeviceKey, SessionKeyDecrypter } from '../protocol/device-protocol';
import {
  type TpmDeviceRecord,
  tpmDeviceSigner,
  tpmTransportDecrypter,
} from '../tpm/tpm-device-keys';

export type KeystoreErrorCode =
  | 'NOT_REGISTERED'
  | 'NO_USER_KEY'
  | 'WRONG_PIN'
  | 'PIN_LOCKED'
  | 'KEY_DESTROYED'
  | 'KEY_EXISTS'
  | 'KEYSTORE_UNSAFE';

export class KeystoreError extends Error {
  constructor(
    readonly code: KeystoreErrorCode,
    message: string,
    readonly details: { retryAfterSeconds?: number; attemptsLeft?: number } = {},
  ) {
    super(message);
    this.name = 'KeystoreError';
  }
}

export interface AntiHammering {
  /** Wrong PINs after which every further attempt waits. */
  lockAfter: number;
  /** Wrong PINs after which the user key is destroyed. */
  destroyAfter: number;
  /** The first wait; it doubles with each further wrong PIN. */
  baseDelaySeconds: number;
}

export const DEFAULT_ANTI_HAMMERING: AntiHammering = {
  lockAfter: 5,
  destroyAfter: 10,
  baseDelaySeconds: 30,
};

export interface PinState {
  failures: number;
  /** Epoch ms before which no PIN is tried. */
  lockedUntil: number;
  /** The user key was destroyed by too many wrong PINs: only a reset brings a key back. */
  destroyed: boolean;
}

/** What the agent knows about its user key, next to the sealed private key. */
export interface UserKeyRecord {
  credentialId: string;
  userId: string;
  username: string;
  algorithm: 'ES256' | 'RS256';
  publicKeyJwk: Record<string, unknown>;
  storage: 'software' | 'tpm';
  createdAt: string;
  /** Software storage: the private key sealed under the PIN. */
  sealed?: SealedKey;
  /** TPM storage: the TPM-wrapped key blobs (base64url) and the TPM's TCTI. */
  tpm?: { tcti: string; public: string; private: string };
}

const FILES = {
  device: 'device.json',
  deviceKey: 'device-key.pem',
  transportKey: 'transport-key.pem',
  tpmDeviceKeys: 'tpm-device-keys.json',
  userKey: 'user-key.json',
  pinState: 'pin-state.json',
  session: 'session.json',
} as const;

const USER_KEY_PURPOSE = 'user-key';

export interface KeystoreOptions {
  now?: () => number;
  scrypt?: ScryptParameters;
  antiHammering?: AntiHammering;
}

export class SoftwareKeystore {
  private readonly now: () => number;
  private readonly scrypt: ScryptParameters;
  readonly antiHammering: AntiHammering;

  constructor(
    readonly dir: string,
    options: KeystoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.scrypt = options.scrypt ?? DEFAULT_SCRYPT;
    this.antiHammering = options.antiHammering ?? DEFAULT_ANTI_HAMMERING;
  }

  /** Creates the folder (0700) or tightens an existing one; refuses one owned by someone else. */
  ensureFolder(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const st = statSync(this.dir);
    if (!st.isDirectory())
      throw new KeystoreError('KEYSTORE_UNSAFE', `${this.dir} is not a folder`);
    if (typeof process.getuid === 'function' && st.uid !== process.getuid())
      throw new KeystoreError('KEYSTORE_UNSAFE', `${this.dir} belongs to another user`);
    if ((st.mode & 0o777) !== 0o700) chmodSync(this.dir, 0o700);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  has(name: keyof typeof FILES): boolean {
    return existsSync(this.path(FILES[name]));
  }

  // --- files ------------------------------------------------------------

  private write(name: string, content: string): void {
    this.ensureFolder();
    const target = this.path(name);
    const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o600);
    renameSync(tmp, target);
  }

  private read(name: string): string | undefined {
    const p = this.path(name);
    if (!existsSync(p)) return undefined;
    const st = statSync(p);
    if ((st.mode & 0o077) !== 0)
      throw new KeystoreError(
        'KEYSTORE_UNSAFE',
        `${p} is readable by others (mode ${(st.mode & 0o777).toString(8)}); expected 0600`,
      );
    return readFileSync(p, 'utf8');
  }

  /** Overwrites the file with random bytes before unlinking it. */
  private wipe(name: string): void {
    const p = this.path(name);
    if (!existsSync(p)) return;
    const size = statSync(p).size;
    const fd = openSync(p, 'r+');
    try {
      writeSync(fd, randomBytes(Math.max(size, 1)), 0, Math.max(size, 1), 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(p);
  }

  private writeJson(name: string, value: unknown): void {
    this.write(name, `${JSON.stringify(value, null, 2)}\n`);
  }

  private readJson<T>(name: string): T | undefined {
    const text = this.read(name);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  // --- device -------------------------------------------------------------

  saveDevice<T extends object>(device: T): void {
    this.writeJson(FILES.device, device);
  }

  loadDevice<T>(): T {
    const device = this.readJson<T>(FILES.device);
    if (!device)
      throw new KeystoreError(
        'NOT_REGISTERED',
        `this device is not registered (no ${FILES.device} in ${this.dir}): run \`latchkey-agent register\``,
      );
    return device;
  }

  saveDeviceKeys(deviceKey: KeyObject, transportKey: KeyObject): void {
    this.write(FILES.deviceKey, deviceKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    this.write(
      FILES.transportKey,
      transportKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    );
  }

  /** TPM mode: the TPM-wrapped blobs of the device and transport keys, the TCTI and the AIK. */
  saveTpmDeviceKeys(record: TpmDeviceRecord): void {
    this.writeJson(FILES.tpmDeviceKeys, record);
  }

  tpmDeviceKeys(): TpmDeviceRecord | undefined {
    return this.readJson<TpmDeviceRecord>(FILES.tpmDeviceKeys);
  }

  /** The device key: a software key, or (TPM mode) a signer that signs inside the TPM. */
  deviceKey(): DeviceKey {
    const tpm = this.tpmDeviceKeys();
    return tpm ? tpmDeviceSigner(tpm) : this.privateKey(FILES.deviceKey);
  }

  /** The transport key: a software key, or (TPM mode) a decrypter that unwraps inside the TPM. */
  transportKey(): KeyObject | SessionKeyDecrypter {
    const tpm = this.tpmDeviceKeys();
    return tpm ? tpmTransportDecrypter(tpm) : this.privateKey(FILES.transportKey);
  }

  private privateKey(name: string): KeyObject {
    const pem = this.read(name);
    if (!pem) throw new KeystoreError('NOT_REGISTERED', `no ${name} in ${this.dir}`);
    return createPrivateKey(pem);
  }

  // --- user key and PIN ---------------------------------------------------

  userKey(): UserKeyRecord | undefined {
    return this.readJson<UserKeyRecord>(FILES.userKey);
  }

  /** Stores a new user key sealed under `pin` (or, in TPM mode, its record only) and clears the PIN counter. */
  storeUserKey(
    record: Omit<UserKeyRecord, 'sealed'>,
    privateKey: KeyObject | undefined,
    pin: string,
  ) {
    const sealed = privateKey ? sealKey(privateKey, pin, USER_KEY_PURPOSE, this.scrypt) : undefined;
    this.writeJson(FILES.userKey, { ...record, ...(sealed ? { sealed } : {}) });
    this.writeJson(FILES.pinState, { failures: 0, lockedUntil: 0, destroyed: false });
  }

  pinState(): PinState {
    return (
      this.readJson<PinState>(FILES.pinState) ?? { failures: 0, lockedUntil: 0, destroyed: false }
    );
  }

  /** Seconds to wait after `failures` wrong PINs (0 below the threshold). */
  delayAfter(failures: number): number {
    const { lockAfter, baseDelaySeconds } = this.antiHammering;
    return failures < lockAfter ? 0 : baseDelaySeconds * 2 ** (failures - lockAfter);
  }

  /** Refuses early (without trying a PIN) when the key is destroyed, missing or locked. */
  assertPinUsable(): PinState {
    const state = this.pinState();
    if (state.destroyed)
      throw new KeystoreError(
        'KEY_DESTROYED',
        'the user key was destroyed after too many wrong PINs: run `latchkey-agent reset-pin`',
      );
    if (!this.has('userKey'))
      throw new KeystoreError(
        'NO_USER_KEY',
        'no user key on this device: run `latchkey-agent provision`',
      );
    const wait = Math.ceil((state.lockedUntil - this.now()) / 1000);
    if (wait > 0)
      throw new KeystoreError(
        'PIN_LOCKED',
        `the PIN is locked after ${state.failures} wrong attempts: try again in ${wait} s`,
        {
          retryAfterSeconds: wait,
          attemptsLeft: this.antiHammering.destroyAfter - state.failures,
        },
      );
    return state;
  }

  /**
   * Checks a PIN attempt against the anti-hammering state. `tryPin` opens the
   * key (software: the sealed file; TPM: the TPM's authorization) and throws
   * WrongPinError for a wrong PIN. The failure is counted before the attempt,
   * so killing the process mid-check does not give a free try.
   */
  attemptPin<T>(tryPin: () => T): T {
    const state = this.assertPinUsable();
    const failures = state.failures + 1;
    const delay = this.delayAfter(failures);
    this.writeJson(FILES.pinState, {
      failures,
      lockedUntil: delay ? this.now() + delay * 1000 : 0,
      destroyed: false,
    });
    let result: T;
    try {
      result = tryPin();
    } catch (err) {
      if (!(err instanceof WrongPinError)) {
        this.writeJson(FILES.pinState, state);
        throw err;
      }
      if (failures >= this.antiHammering.destroyAfter) {
        this.destroyUserKey();
        throw new KeystoreError(
          'KEY_DESTROYED',
          `wrong PIN: ${failures} wrong PINs in a row, the user key is destroyed: run \`latchkey-agent reset-pin\``,
        );
      }
      const left = this.antiHammering.destroyAfter - failures;
      throw new KeystoreError(
        'WRONG_PIN',
        delay
          ? `wrong PIN: locked for ${delay} s; ${left} attempts left before the key is destroyed`
          : `wrong PIN (${failures} of ${this.antiHammering.lockAfter} before the PIN locks)`,
        { retryAfterSeconds: delay || undefined, attemptsLeft: left },
      );
    }
    this.writeJson(FILES.pinState, { failures: 0, lockedUntil: 0, destroyed: false });
    return result;
  }

  /** Opens the software user key with the PIN, under anti-hammering. */
  unlockUserKey(pin: string): { record: UserKeyRecord; privateKey: KeyObject } {
    return this.attemptPin(() => {
      const record = this.userKey()!;
      if (!record.sealed)
        throw new KeystoreError('NO_USER_KEY', 'the user key is not a software key');
      return { record, privateKey: openSealedKey(record.sealed, pin, USER_KEY_PURPOSE) };
    });
  }

  /** Destroys the user key and its session; only a reset (re-provisioning) brings a key back. */
  destroyUserKey(): void {
    this.wipe(FILES.userKey);
    this.wipe(FILES.session);
    this.writeJson(FILES.pinState, { failures: 0, lockedUntil: 0, destroyed: true });
  }

  /** Forgets the user key (reset-pin, unregister) without marking it destroyed. */
  removeUserKey(): void {
    this.wipe(FILES.userKey);
    this.wipe(FILES.session);
    this.wipe(FILES.pinState);
  }

  // --- session ------------------------------------------------------------

  saveSession<T extends object>(session: T): void {
    this.writeJson(FILES.session, session);
  }

  session<T>(): T | undefined {
    return this.readJson<T>(FILES.session);
  }

  removeSession(): void {
    this.wipe(FILES.session);
  }

  /** Removes every file of the keystore (unregister). */
  wipeAll(): void {
    for (const name of Object.values(FILES)) this.wipe(name);
  }
}
