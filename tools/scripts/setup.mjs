// The set-up shared by `npm start` and `npm test`: dependencies, the local
// stack, databases and migrations, Prisma clients, the build. Idempotent.
// Only node: built-ins at the top: this runs before `npm install` has.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const log = (m) => process.stderr.write(`[setup] ${m}\n`);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status})`);
}

function installIfNeeded() {
  // A node_modules linked from another checkout (a git worktree) is that checkout's to install.
  if (
    existsSync(join(root, 'node_modules')) &&
    lstatSync(join(root, 'node_modules')).isSymbolicLink()
  )
    return;
  const marker = join(root, 'node_modules/.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  log('installing npm dependencies (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

/**
 * The services listen on 8081+ and 50051+ (plus profile offsets), inside Linux's
 * ephemeral port range (32768-60999): an outgoing connection that happens to get
 * such a port as its local port makes a service's listen fail with EADDRINUSE.
 * Reserve those ranges from ephemeral use when allowed (root); otherwise say so.
 */
const RESERVED_PORTS = ['8000-8999', '50000-50999'];
function reserveServicePorts() {
  const file = '/proc/sys/net/ipv4/ip_local_reserved_ports';
  try {
    const current = readFileSync(file, 'utf8').trim();
    const have = current ? current.split(',') : [];
    const missing = RESERVED_PORTS.filter((r) => !have.includes(r));
    if (!missing.length) return;
    writeFileSync(file, [...have, ...missing].join(','));
    log(`reserved ports ${missing.join(',')} from ephemeral use (${file})`);
  } catch (err) {
    log(
      `could not reserve ports ${RESERVED_PORTS.join(',')} (${err.code ?? err.message}): a rare EADDRINUSE at service start is possible`,
    );
  }
}

async function timed(what, fn) {
  const t = Date.now();
  await fn();
  log(`${what}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
}

/** @param {{ profile: 'dev' | 'test' }} options */
export async function setup({ profile }) {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  await timed('dependencies', () => installIfNeeded());
  reserveServicePorts();
  const { up } = await import('../stack/stack.mjs');
  await timed('stack (PostgreSQL, Redis, Kafka)', () => up({ log }));
  // The registration tests drive openssl and a software TPM (swtpm, tpm2-tools).
  const { ensureTpmTools } = await import('../stack/tpm-tools.mjs');
  await timed('openssl, swtpm, tpm2-tools', () => ensureTpmTools({ log }));
  const { catalog } = (await import('./services.cjs')).default;
  process.env.LATCHKEY_DB_PREFIX = catalog.profiles[profile].dbPrefix;
  const db = await import('./db.mjs');
  const services = catalog.services.map((s) => s.name);
  await timed('databases and migrations', () => db.deployMigrations(services));
  await timed('prisma clients', () => db.generateClients(services));
  const { build } = await import('./build.mjs');
  await timed('build', () => build({ log }));
  // ESLint's @nx/enforce-module-boundaries silently skips itself when no project
  // graph is cached (a fresh clone): compute it so the boundaries are enforced.
  await timed('nx project graph', () =>
    run(join(root, 'node_modules/.bin/nx'), ['show', 'projects'], {
      stdio: 'ignore',
      env: { ...process.env, NX_DAEMON: 'false' },
    }),
  );
}
