// The key-encryption key of local development and tests: 32 random bytes made once per user
// and machine, outside the repository, so that no published key encrypts local secrets. services.cjs puts it
// first in KEY_ENCRYPTION_KEYS (new writes use it), before the fixed public key that encrypted
// local data until now (which therefore still decrypts).
'use strict';
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** `<kid>:<base64 of 32 bytes>`, the form of one KEY_ENCRYPTION_KEYS entry. */
const SPEC = /^(local-[0-9a-f]{8}):([A-Za-z0-9+/]{43}=)$/;

/**
 * Where the key is: LATCHKEY_LOCAL_KEK_FILE, else latchkey/local-kek in the user's configuration
 * directory ($XDG_CONFIG_HOME, or ~/.config). One key per user and machine, not per clone: the
 * local PostgreSQL is the machine's, so every clone, worktree and CI run on it reads the rows the
 * others encrypted (a fresh clone with a key of its own could not load auth's signing keys).
 */
function localKekFile(env = process.env) {
  if (env.LATCHKEY_LOCAL_KEK_FILE) return path.resolve(env.LATCHKEY_LOCAL_KEK_FILE);
  const configHome = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(configHome, 'latchkey', 'local-kek');
}

function readSpec(file) {
  const text = fs.readFileSync(file, 'utf8').trim();
  if (!SPEC.test(text))
    // Never replaced silently: local data encrypted with it would no longer decrypt.
    throw new Error(
      `${file} is not a local key-encryption key (expected one line "local-<8 hex>:<base64 of 32 bytes>"); ` +
        'restore it, or delete it and reset the local databases (node tools/scripts/db.mjs reset)',
    );
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  return text;
}

/**
 * The local key as `<kid>:<base64>`, made on first use (mode 0600, in a 0700 directory).
 * Concurrent first uses agree: the key is written to a private temporary file and linked into
 * place, which fails for all but one of them; the others read the winner's.
 */
function localKeyEncryptionKey(env = process.env) {
  const file = localKekFile(env);
  if (fs.existsSync(file)) return readSpec(file);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const spec = `local-${randomBytes(4).toString('hex')}:${randomBytes(32).toString('base64')}`;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, `${spec}\n`, { mode: 0o600, flag: 'wx' });
  try {
    fs.chmodSync(tmp, 0o600); // whatever the umask
    fs.linkSync(tmp, file);
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return readSpec(file);
}

module.exports = { localKeyEncryptionKey, localKekFile };
