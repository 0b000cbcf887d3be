/** The local key-encryption key (tools/scripts/local-kek.cjs) and KEY_ENCRYPTION_KEYS of the launcher. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KeyEncryption, parseKeyEncryptionKeys } from '@latchkey/crypto';

// CommonJS scripts of the repository, loaded by path (as libs/testing does with services.cjs).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kek = require('./local-kek.cjs') as {
  localKeyEncryptionKey(env?: NodeJS.ProcessEnv): string;
  localKekFile(env?: NodeJS.ProcessEnv): string;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const launcher = require('./services.cjs') as {
  serviceEnv(service: string, profile?: string): NodeJS.ProcessEnv;
};

const run = promisify(execFile);
const LOCAL_DEV_KEK = Buffer.from('bGF0Y2hrZXktbG9jYWwtZGV2LWtlay0wMDAwMDAwMDA=', 'base64');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'local-kek-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('localKeyEncryptionKey', () => {
  it('makes a random 32-byte key once, in $XDG_CONFIG_HOME/latchkey/local-kek with mode 0600, and reuses it', () => {
    const env = { XDG_CONFIG_HOME: dir };
    const spec = kek.localKeyEncryptionKey(env);
    const keys = parseKeyEncryptionKeys(spec);
    const [kid, key] = [...keys][0]!;
    expect(keys.size).toBe(1);
    expect(kid).toMatch(/^local-[0-9a-f]{8}$/);
    expect(key.equals(LOCAL_DEV_KEK)).toBe(false);
    const file = join(dir, 'latchkey', 'local-kek');
    expect(readFileSync(file, 'utf8')).toBe(`${spec}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'latchkey')).mode & 0o077).toBe(0);
    expect(kek.localKeyEncryptionKey(env)).toBe(spec);
    const other = mkdtempSync(join(tmpdir(), 'local-kek-other-'));
    try {
      // Another user or machine, another key.
      expect(kek.localKeyEncryptionKey({ XDG_CONFIG_HOME: other })).not.toBe(spec);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('gives processes that make it at the same moment one and the same key', async () => {
    const script = `process.stdout.write(require(${JSON.stringify(require.resolve('./local-kek.cjs'))}).localKeyEncryptionKey({ XDG_CONFIG_HOME: ${JSON.stringify(dir)} }))`;
    const specs = await Promise.all(
      Array.from({ length: 6 }, async () => (await run(process.execPath, ['-e', script])).stdout),
    );
    expect(new Set(specs).size).toBe(1);
    expect(readFileSync(join(dir, 'latchkey', 'local-kek'), 'utf8')).toBe(`${specs[0]}\n`);
  });

  it('tightens the mode of an existing key file, and refuses a damaged one instead of replacing it', () => {
    const env = { XDG_CONFIG_HOME: dir };
    const spec = kek.localKeyEncryptionKey(env);
    const file = join(dir, 'latchkey', 'local-kek');
    writeFileSync(file, `${spec}\n`, { mode: 0o644 });
    expect(kek.localKeyEncryptionKey(env)).toBe(spec);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, 'local-dev:c2hvcnQ=\n');
    expect(() => kek.localKeyEncryptionKey(env)).toThrow(
      /local-kek is not a local key-encryption key .*delete it and reset the local databases/,
    );
    expect(readFileSync(file, 'utf8')).toBe('local-dev:c2hvcnQ=\n');
  });

  it('is one per user and machine (~/.config unless XDG_CONFIG_HOME), or where LATCHKEY_LOCAL_KEK_FILE says', () => {
    expect(kek.localKekFile({ HOME: '/home/dev' })).toBe('/home/dev/.config/latchkey/local-kek');
    expect(kek.localKekFile({ HOME: '/home/dev', XDG_CONFIG_HOME: '/cfg' })).toBe(
      '/cfg/latchkey/local-kek',
    );
    const elsewhere = join(dir, 'elsewhere', 'kek');
    expect(kek.localKekFile({ XDG_CONFIG_HOME: '/cfg', LATCHKEY_LOCAL_KEK_FILE: elsewhere })).toBe(
      elsewhere,
    );
    expect(kek.localKeyEncryptionKey({ LATCHKEY_LOCAL_KEK_FILE: elsewhere })).toBe(
      readFileSync(elsewhere, 'utf8').trim(),
    );
  });
});

describe("the launcher's KEY_ENCRYPTION_KEYS", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('puts the local key first, then the old public key: new writes use the first, old data decrypts', () => {
    delete process.env.KEY_ENCRYPTION_KEYS;
    process.env.LATCHKEY_LOCAL_KEK_FILE = join(dir, 'local-kek');
    const value = launcher.serviceEnv('registration', 'test').KEY_ENCRYPTION_KEYS!;
    const keys = parseKeyEncryptionKeys(value);
    const local = readFileSync(join(dir, 'local-kek'), 'utf8').trim();
    expect(value).toBe(`${local},local-dev:${LOCAL_DEV_KEK.toString('base64')}`);
    expect([...keys.keys()]).toEqual([local.split(':')[0], 'local-dev']);

    const before = new KeyEncryption(`local-dev:${LOCAL_DEV_KEK.toString('base64')}`);
    const stored = before.encrypt('tenant CA private key', 'registration.ca-key:t1');
    const now = new KeyEncryption(value);
    expect(now.decrypt(stored, 'registration.ca-key:t1').toString()).toBe('tenant CA private key');
    expect(KeyEncryption.keyIdOf(now.encrypt('s', 'c'))).toBe(local.split(':')[0]);
  });

  it('is whatever KEY_ENCRYPTION_KEYS the environment sets, and then makes no key file', () => {
    process.env.KEY_ENCRYPTION_KEYS = `mine:${Buffer.alloc(32, 1).toString('base64')}`;
    process.env.LATCHKEY_LOCAL_KEK_FILE = join(dir, 'unused');
    expect(launcher.serviceEnv('auth', 'test').KEY_ENCRYPTION_KEYS).toBe(
      process.env.KEY_ENCRYPTION_KEYS,
    );
    expect(() => statSync(join(dir, 'unused'))).toThrow(/ENOENT/);
  });
});
