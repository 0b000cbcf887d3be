// Command-line tools the tests drive: openssl (CSRs and checks made by a tool
// that is not ours), a software TPM (swtpm + tpm2-tools, see STACK-NOTES) and
// kcat (the audit stream read the way a SOC would). Installed from Debian when missing; a PATH lookup when present.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian package → a command it provides. */
const PACKAGES = {
  openssl: 'openssl',
  swtpm: 'swtpm',
  'swtpm-tools': 'swtpm_setup',
  'tpm2-tools': 'tpm2_createprimary',
  kcat: 'kcat',
};

function onPath(cmd) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function apt(args) {
  return spawnSync('apt-get', args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 900_000,
  }).status;
}

/** Installs whichever of the packages is missing (idempotent). */
export function ensureTpmTools({ log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  const missing = Object.entries(PACKAGES)
    .filter(([, cmd]) => !onPath(cmd))
    .map(([pkg]) => pkg);
  if (!missing.length) return;
  if (!onPath('apt-get') || (process.getuid && process.getuid() !== 0)) {
    throw new Error(
      `missing ${missing.join(', ')}: install them (apt-get install -y ${missing.join(' ')})`,
    );
  }
  log(`apt-get install -y ${missing.join(' ')}`);
  if (apt(['install', '-y', '-qq', ...missing]) === 0) return;
  apt(['update', '-qq']);
  if (apt(['install', '-y', '-qq', ...missing]) !== 0)
    throw new Error(`apt-get install ${missing.join(' ')} failed`);
}
