// The chaos suite's private infrastructure: a PostgreSQL cluster, a Redis and a Kafka broker of
// its own on 127.0.0.1 (ports of tools/services.json profile `chaos`), so that killing them
// touches nothing else on the machine. Fresh on every run (state under tmp/chaos).
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const launcher = require('../scripts/services.cjs');

export const PROFILE = 'chaos';
const profile = launcher.catalog.profiles[PROFILE];
const portOf = (url) => Number(/:(\d+)\/?$/.exec(url)[1]);
export const PG_PORT = portOf(profile.postgres);
export const REDIS_PORT = portOf(profile.redis);
export const KAFKA_PORT = portOf(profile.kafka);

export const DIR = join(launcher.root, 'tmp', 'chaos');
const PG_DIR = join(DIR, 'pg');
const STACK_DIR = join(DIR, 'stack');
const KAFKA_PID_FILE = join(STACK_DIR, 'kafka', 'kafka.pid');
const REDIS_PID_FILE = join(DIR, 'redis.pid');

const log = (m) => process.stderr.write(`[chaos] ${m}\n`);

function pgBin(name) {
  const versions = existsSync('/usr/lib/postgresql')
    ? spawnSync('ls', ['/usr/lib/postgresql'], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => b - a)
    : [];
  if (!versions.length) throw new Error('no PostgreSQL server in /usr/lib/postgresql');
  return join('/usr/lib/postgresql', versions[0], 'bin', name);
}

/** PostgreSQL refuses to run as root: its tools run as the `postgres` user when we are root. */
function asPostgres(cmd, args) {
  const asRoot = process.getuid?.() === 0;
  const r = asRoot
    ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' })
    : spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, {
    cwd: launcher.root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.setTimeout(1000);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

async function waitFor(what, check, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------- PostgreSQL

const pgOptions = () =>
  [
    `-p ${PG_PORT}`,
    `-k ${PG_DIR}`,
    "-c listen_addresses='127.0.0.1'",
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
  ].join(' ');

function pgCtl(action, extra = []) {
  asPostgres(pgBin('pg_ctl'), [
    ...['-D', PG_DIR, '-l', join(PG_DIR, 'server.log'), '-o', pgOptions()],
    ...[...extra, '-w', '-t', '60', action],
  ]);
}

export async function startPostgres() {
  if (!existsSync(join(PG_DIR, 'PG_VERSION'))) {
    mkdirSync(PG_DIR, { recursive: true });
    if (process.getuid?.() === 0) {
      const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
      const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
      chownSync(PG_DIR, Number(pw.stdout), Number(gid.stdout));
    }
    asPostgres(pgBin('initdb'), ['-D', PG_DIR, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  }
  pgCtl('start');
}

/** `fast`: the server ends every session (57P01) and restarts; clients must reconnect. */
export function restartPostgres() {
  pgCtl('restart', ['-m', 'fast']);
}

function stopPostgres() {
  if (!existsSync(join(PG_DIR, 'postmaster.pid'))) return;
  try {
    asPostgres(pgBin('pg_ctl'), ['-D', PG_DIR, '-m', 'immediate', '-w', 'stop']);
  } catch (err) {
    log(`postgres stop: ${err.message}`);
  }
}

export async function migrate() {
  const db = await import('../scripts/db.mjs');
  const env = {
    ...process.env,
    PGHOST: '127.0.0.1',
    PGPORT: String(PG_PORT),
    LATCHKEY_DB_PREFIX: profile.dbPrefix,
  };
  delete env.DATABASE_URL;
  await db.deployMigrations(db.SERVICES, { quiet: true, env });
}

export const databaseUrl = (service) => `${profile.postgres}${profile.dbPrefix}${service}`;

// ---------------------------------------------------------------- Redis

export async function startRedis() {
  const config = {
    daemonize: 'yes',
    bind: '127.0.0.1',
    port: REDIS_PORT,
    save: '',
    appendonly: 'no',
    pidfile: REDIS_PID_FILE,
    logfile: join(DIR, 'redis.log'),
  };
  run(
    'redis-server',
    Object.entries(config).flatMap(([k, v]) => [`--${k}`, String(v)]),
  );
  await waitFor('redis', () => tcpOpen(REDIS_PORT), 20_000);
}

export async function stopRedis() {
  if (!(await tcpOpen(REDIS_PORT))) return;
  spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(REDIS_PORT), 'shutdown', 'nosave']);
  await waitFor('redis to stop', async () => !(await tcpOpen(REDIS_PORT)), 20_000);
}

// ---------------------------------------------------------------- Kafka (tools/stack, private dir)

const kafkaEnv = () => ({ LATCHKEY_STACK_DIR: STACK_DIR, LATCHKEY_KAFKA_PORT: String(KAFKA_PORT) });

export function startKafka() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['tools/stack/stack.mjs', 'kafka-start'], {
      cwd: launcher.root,
      env: { ...process.env, ...kafkaEnv() },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`kafka-start failed: ${err.slice(-2000)}`)),
    );
  });
}

/** SIGKILL: no controlled shutdown, no flush; the broker restarts from what reached its log. */
export async function killKafka() {
  const pid = Number(readFileSync(KAFKA_PID_FILE, 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  await waitFor('kafka to die', async () => !(await tcpOpen(KAFKA_PORT)), 20_000);
  return pid;
}

function stopKafka() {
  spawnSync(process.execPath, ['tools/stack/stack.mjs', 'kafka-stop'], {
    cwd: launcher.root,
    env: { ...process.env, ...kafkaEnv() },
    stdio: 'ignore',
  });
}

// ---------------------------------------------------------------- all of it

function killPidFile(file) {
  try {
    process.kill(Number(readFileSync(file, 'utf8').trim()), 'SIGKILL');
  } catch {
    /* not running */
  }
}

/** Stops whatever an earlier (possibly killed) run left, then starts all three fresh. */
export async function up() {
  await down();
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  for (const [name, port] of [
    ['PostgreSQL', PG_PORT],
    ['Redis', REDIS_PORT],
    ['Kafka', KAFKA_PORT],
  ])
    if (await tcpOpen(port))
      throw new Error(`port ${port} (${name}) is taken: is another chaos run going on?`);
  const t0 = Date.now();
  await startPostgres();
  await startRedis();
  await startKafka();
  await migrate();
  log(
    `private stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s (pg ${PG_PORT}, redis ${REDIS_PORT}, kafka ${KAFKA_PORT})`,
  );
}

export async function down() {
  if (existsSync(KAFKA_PID_FILE)) stopKafka();
  killPidFile(KAFKA_PID_FILE);
  await stopRedis().catch(() => killPidFile(REDIS_PID_FILE));
  stopPostgres();
}

export const sizeOf = (file) => (existsSync(file) ? statSync(file).size : 0);
