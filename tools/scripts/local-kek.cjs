// The key-encryption key of local development and tests: 32 random bytes made once per clone
// and kept out of git, so that no published key encrypts local secrets. services.cjs puts it
// first in KEY_ENCRYPTION_KEYS (new writes use it), before the fixed public key that encrypted
// local data until now (which therefore still decrypts).
'use strict';
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

/** `<kid>:<base64 of 32 bytes>`, the form of one KEY_ENCRYPTION_KEYS entry. */
const SPEC = /^(local-[0-9a-f]{8}):([A-Za-z0-9+/]{43}=)$/;

/**
 * The checkout whose .latchkey/ holds the key: `root` itself, or, in a linked worktree
 * (`git worktree add`), the clone's main checkout. Every worktree of a clone uses the same
 * local databases, so they must share one key: rows one of them wrote must decrypt in the others.
 */
function keyHome(root) {
  const dotGit = path.join(root, '.git');
  let text;
  try {
    if (fs.statSync(dotGit).isDirectory()) return root;
    text = fs.readFileSync(dotGit, 'utf8');
  } catch {
    return root; // not a git checkout (an unpacked archive): the key stays in it
  }
  // A linked worktree's .git is a file "gitdir: <clone>/.git/worktrees/<name>"; its
  // `commondir` names the clone's .git, whose parent is the main checkout.
  const gitdir = /^gitdir:\s*(.+)$/m.exec(text)?.[1]?.trim();
  if (!gitdir) return root;
  const dir = path.resolve(root, gitdir);
  try {
    const common = path.resolve(dir, fs.readFileSync(path.join(dir, 'commondir'), 'utf8').trim());
    return path.basename(common) === '.git' ? path.dirname(common) : root;
  } catch {
    return root;
  }
}

/** Where the key is: LATCHKEY_LOCAL_KEK_FILE, else <main checkout>/.latchkey/local-kek. */
function localKekFile(root, env = process.env) {
  return env.LATCHKEY_LOCAL_KEK_FILE
    ? path.resolve(env.LATCHKEY_LOCAL_KEK_FILE)
    : path.join(keyHome(root), '.latchkey', 'local-kek');
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
function localKeyEncryptionKey(root, env = process.env) {
  const file = localKekFile(root, env);
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

module.exports = { localKeyEncryptionKey, localKekFile, keyHome };
