#!/usr/bin/env node
// Local infrastructure stack for latchkey: PostgreSQL, Redis and a single-node
// Apache Kafka (KRaft, combined broker+controller), all on 127.0.0.1.
//
//   node tools/stack/stack.mjs up|down|status|kafka-start|kafka-stop
//
// Importable (plain Node >= 20 ESM, node: builtins only):
//   import { up, down, status, startKafka, stopKafka } from '../stack/stack.mjs';
//
// `up` is idempotent. `.stack/state.json` remembers what `up` itself started,
// and `down` stops only that. See tools/stack/README.md.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------
// Layout and constants

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..');
// A private stack (tools/chaos: its own broker it may SIGKILL) sets LATCHKEY_STACK_DIR and
// LATCHKEY_KAFKA_PORT (controller: that port + 1); everything else stays the shared stack's.
const STACK_DIR = path.resolve(process.env.LATCHKEY_STACK_DIR || path.join(REPO_ROOT, '.stack'));
const STATE_FILE = path.join(STACK_DIR, 'state.json');
const LOCK_FILE = path.join(STACK_DIR, 'stack.lock');

const HOST = '127.0.0.1';
const PG_PORT = 5432;
const REDIS_PORT = 6379;
const KAFKA_PORT = Number(process.env.LATCHKEY_KAFKA_PORT || 9092);
const KAFKA_CONTROLLER_PORT = KAFKA_PORT + 1;

const KAFKA_VERSION = '4.1.1';
// Any 16 bytes, base64url without padding (Kafka's Uuid format). Fixed so the
// data dir can always be re-used.
const KAFKA_CLUSTER_ID = Buffer.from('latchkey-dev-stk').toString('base64url');
const KAFKA_DIR = path.join(STACK_DIR, 'kafka');
const KAFKA_DATA_DIR = path.join(KAFKA_DIR, 'data');
const KAFKA_LOG_DIR = path.join(KAFKA_DIR, 'logs');
const KAFKA_SERVER_LOG = path.join(KAFKA_LOG_DIR, 'server.log');
const KAFKA_STDOUT_LOG = path.join(KAFKA_LOG_DIR, 'kafka.out');
const KAFKA_PROPS = path.join(KAFKA_DIR, 'server.properties');
const KAFKA_LOG4J = path.join(KAFKA_DIR, 'log4j2.xml');
const KAFKA_PID_FILE = path.join(KAFKA_DIR, 'kafka.pid');
const KAFKA_POM = path.join(REPO_ROOT, 'tools', 'kafka', 'pom.xml');
const CACHE_DIR = path.resolve(
  process.env.LATCHKEY_CACHE || path.join(os.homedir(), '.cache', 'latchkey'),
);
const KAFKA_LIBS = path.join(CACHE_DIR, `kafka-${KAFKA_VERSION}`, 'libs');
const KAFKA_LIBS_MARKER = '.latchkey-complete';
const KAFKA_CDS_DIR = path.dirname(KAFKA_LIBS);
const KAFKA_READY_LINE = 'Kafka Server started';
const KAFKA_START_TIMEOUT_MS = 120_000;
const KAFKA_STOP_TIMEOUT_MS = 30_000;
// Startup on a 2-core machine is CPU-bound (class loading + JIT). C1 only
// (TieredStopAtLevel=1) and an AppCDS archive (see kafkaCdsOpts) cut the CPU
// spent until "Kafka Server started" from ~8 s to ~2.5 s and RSS from ~250 MB
// to ~150 MB. Extra options (later ones win) in LATCHKEY_KAFKA_JAVA_OPTS, e.g.
// "-XX:TieredStopAtLevel=4" for full C2 throughput.
const KAFKA_JVM_OPTS = [
  '-Xmx512m',
  '-Xms256m',
  '-XX:MaxDirectMemorySize=256m',
  '-XX:MaxMetaspaceSize=192m',
  '-XX:ReservedCodeCacheSize=96m',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:InitiatingHeapOccupancyPercent=35',
  '-XX:+ExplicitGCInvokesConcurrent',
  '-XX:+ExitOnOutOfMemoryError',
  `-XX:ErrorFile=${path.join(KAFKA_LOG_DIR, 'hs_err_pid%p.log')}`,
  '-XX:TieredStopAtLevel=1',
  '-Xlog:cds*=error', // CDS "skipping class" warnings are noise
  '-Djava.awt.headless=true',
];

export const paths = Object.freeze({
  repoRoot: REPO_ROOT,
  stackDir: STACK_DIR,
  stateFile: STATE_FILE,
  kafkaDir: KAFKA_DIR,
  kafkaDataDir: KAFKA_DATA_DIR,
  kafkaServerLog: KAFKA_SERVER_LOG,
  kafkaPidFile: KAFKA_PID_FILE,
  kafkaLibs: KAFKA_LIBS,
});

export const endpoints = Object.freeze({
  postgres: `${HOST}:${PG_PORT}`,
  redis: `${HOST}:${REDIS_PORT}`,
  kafka: `${HOST}:${KAFKA_PORT}`,
});

export class StackError extends Error {}

const defaultLog = (msg) => process.stderr.write(`[stack] ${msg}\n`);
const secs = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

// ---------------------------------------------------------------------------
// Small helpers: processes, commands, sockets

function which(cmd) {
  const dirs = (process.env.PATH || '')
    .split(path.delimiter)
    .concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** Run a command to completion; resolves { code, stdout, stderr } (never rejects unless spawn fails). */
function run(cmd, args, { timeoutMs = 60_000, env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: env ? { ...process.env, ...env } : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(timed out after ${timeoutMs / 1000}s)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new StackError(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

function tail(text, n) {
  return text.split('\n').filter(Boolean).slice(-n).join('\n');
}

async function runOrThrow(what, cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const out = tail(`${r.stdout}\n${r.stderr}`, 30);
    throw new StackError(
      `${what} failed (exit ${r.code}): ${cmd} ${args.join(' ')}${out ? `\n${out}` : ''}`,
    );
  }
  return r;
}

let aptUpdated = false;
async function aptInstall(pkgs, log) {
  if (!which('apt-get'))
    throw new StackError(
      `${pkgs.join(', ')} missing and apt-get is not available: install ${pkgs.join(' ')} by hand`,
    );
  if (process.getuid && process.getuid() !== 0) {
    throw new StackError(
      `${pkgs.join(', ')} missing: run as root, or install by hand: apt-get install -y ${pkgs.join(' ')}`,
    );
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    log(`apt-get update (to install ${pkgs.join(', ')})`);
    await runOrThrow('apt-get update', 'apt-get', ['update', '-qq'], { env, timeoutMs: 600_000 });
    aptUpdated = true;
  }
  log(`apt-get install -y ${pkgs.join(' ')}`);
  await runOrThrow('apt-get install', 'apt-get', ['install', '-y', '-qq', ...pkgs], {
    env,
    timeoutMs: 900_000,
  });
}

function pidAlive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  // A zombie still "exists" for kill(0); treat it as gone.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
  } catch {
    /* no /proc (not Linux) or raced with exit */
  }
  return true;
}

/** true when pid is alive and (where /proc exists) really is a Kafka broker JVM. */
function isKafkaProcess(pid) {
  if (!pidAlive(pid)) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes('kafka.Kafka');
  } catch {
    return !fs.existsSync('/proc/self'); // cannot check on this OS: trust the pid
  }
}

function tcpOpen(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Send bytes, collect the answer until `complete(buf)` says so; resolves the buffer or null. */
function tcpExchange(port, payload, complete, timeoutMs = 2000) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    let settled = false;
    const s = net.connect({ host: HOST, port });
    const done = (v) => {
      if (settled) return;
      settled = true;
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(null));
    s.once('connect', () => s.write(payload));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (complete(buf)) done(buf);
    });
    s.once('error', () => done(null));
    s.once('close', () => done(buf.length ? buf : null));
  });
}

/** Redis: raw PING, expect +PONG. */
export async function pingRedis() {
  const buf = await tcpExchange(REDIS_PORT, Buffer.from('PING\r\n'), (b) => b.includes('\r\n'));
  return !!buf && buf.toString('latin1').startsWith('+PONG');
}

/**
 * One Kafka request (header v1, non-flexible versions) over a fresh connection.
 * Resolves the response after correlation_id, or null (no answer / closed).
 */
async function kafkaRequest(apiKey, apiVersion, body) {
  const clientId = Buffer.from('latchkey-stack');
  const correlationId = 0x1a7c4;
  const header = Buffer.alloc(10);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(apiVersion, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(clientId.length, 8);
  const request = Buffer.concat([header, clientId, body]);
  const size = Buffer.alloc(4);
  size.writeInt32BE(request.length);
  const buf = await tcpExchange(
    KAFKA_PORT,
    Buffer.concat([size, request]),
    (b) => b.length >= 4 && b.length >= 4 + b.readInt32BE(0),
  );
  if (!buf || buf.length < 8 || buf.length < 4 + buf.readInt32BE(0)) return null;
  if (buf.readInt32BE(4) !== correlationId) return null;
  return buf.subarray(8, 4 + buf.readInt32BE(0));
}

/** Kafka: a real ApiVersions (v0) request; true when the broker answers it. */
export async function pingKafka() {
  const res = await kafkaRequest(18, 0, Buffer.alloc(0));
  if (!res || res.length < 2) return false;
  const err = res.readInt16BE(0); // 35 UNSUPPORTED_VERSION still means "a Kafka broker"
  return err === 0 || err === 35;
}

/**
 * FindCoordinator (v0) for a throw-away group: on a fresh broker this creates
 * __consumer_offsets, so the first consumer group of a test does not wait for it.
 * Resolves the error code (0 = coordinator available) or null.
 */
async function kafkaFindCoordinator(groupId = 'latchkey-stack-warmup') {
  const g = Buffer.from(groupId);
  const len = Buffer.alloc(2);
  len.writeInt16BE(g.length);
  const res = await kafkaRequest(10, 0, Buffer.concat([len, g]));
  return res && res.length >= 2 ? res.readInt16BE(0) : null;
}

async function warmKafkaGroups(log, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let err;
  while (Date.now() < deadline) {
    err = await kafkaFindCoordinator();
    if (err === 0) return true;
    await sleep(200);
  }
  log(
    `kafka: note: group coordinator still not available after ${timeoutMs / 1000}s (error ${err})`,
  );
  return false;
}

// ---------------------------------------------------------------------------
// State (.stack/state.json) and a cross-process lock

function readState() {
  try {
    const s = JSON.parse(fs.readFileSync(STATE_FILE, 'utf8'));
    return s && typeof s === 'object' && !Array.isArray(s) ? s : {};
  } catch {
    return {};
  }
}

function writeState(state) {
  fs.mkdirSync(STACK_DIR, { recursive: true });
  const tmp = `${STATE_FILE}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(tmp, STATE_FILE);
}

function updateState(patch) {
  const s = { ...readState() };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete s[k];
    else s[k] = v;
  }
  writeState(s);
  return s;
}

let inProcessChain = Promise.resolve();

/** Serialise up/down/startKafka/stopKafka, within this process and across processes. */
function withLock(fn) {
  const result = inProcessChain.then(() => withFileLock(fn));
  inProcessChain = result.catch(() => {});
  return result;
}

async function withFileLock(fn) {
  fs.mkdirSync(STACK_DIR, { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  let waitedMsg = false;
  for (;;) {
    try {
      const fd = fs.openSync(LOCK_FILE, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const holder = Number.parseInt(fs.readFileSync(LOCK_FILE, 'utf8'), 10);
      if (!pidAlive(holder) || holder === process.pid) {
        fs.rmSync(LOCK_FILE, { force: true }); // stale
        continue;
      }
      if (Date.now() > deadline)
        throw new StackError(`another stack command (pid ${holder}) holds ${LOCK_FILE}`);
      if (!waitedMsg) {
        defaultLog(`waiting for another stack command (pid ${holder}) to finish`);
        waitedMsg = true;
      }
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    try {
      if (fs.readFileSync(LOCK_FILE, 'utf8') === String(process.pid))
        fs.rmSync(LOCK_FILE, { force: true });
    } catch {
      /* already gone */
    }
  }
}

async function waitFor(what, check, timeoutMs, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new StackError(`${what}: not ready after ${timeoutMs / 1000}s`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL

async function pgIsReady() {
  if (!(await tcpOpen(PG_PORT))) return false;
  if (!which('pg_isready')) return true;
  const r = await run('pg_isready', ['-q', '-h', HOST, '-p', String(PG_PORT)], {
    timeoutMs: 10_000,
  });
  return r.code === 0;
}

function psql(sql) {
  return run(
    'psql',
    ['-h', HOST, '-p', String(PG_PORT), '-U', 'postgres', '-d', 'postgres', '-XAtqc', sql],
    {
      timeoutMs: 20_000,
      env: { PGCONNECT_TIMEOUT: '5' },
    },
  );
}

async function pgClusters() {
  if (!which('pg_lsclusters')) return [];
  const r = await run('pg_lsclusters', ['--no-header']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map(([version, name, port, status]) => ({ version, name, port: Number(port), status }));
}

async function pgCluster() {
  const all = await pgClusters();
  return (
    all.find((c) => c.port === PG_PORT && c.name === 'main') ||
    all.find((c) => c.port === PG_PORT) ||
    null
  );
}

/** Make 127.0.0.1 / ::1 connections trust-authenticated (only used when psql is refused). */
async function pgTrustLocalhost(cluster, log) {
  const hba = `/etc/postgresql/${cluster.version}/${cluster.name}/pg_hba.conf`;
  if (!fs.existsSync(hba))
    throw new StackError(`PostgreSQL refuses psql -U postgres and ${hba} does not exist`);
  const marker = '# latchkey tools/stack: trust local TCP connections';
  const text = fs.readFileSync(hba, 'utf8');
  if (!text.includes(marker)) {
    log(`postgres: enabling trust auth for 127.0.0.1 and ::1 in ${hba}`);
    fs.writeFileSync(
      hba,
      `${marker}\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n\n${text}`,
    );
  }
  await runOrThrow('pg_ctlcluster reload', 'pg_ctlcluster', [
    '--skip-systemctl-redirect',
    cluster.version,
    cluster.name,
    'reload',
  ]);
  await sleep(500);
}

async function ensurePostgres(log) {
  const t0 = Date.now();
  let started = false;
  if (!(await pgIsReady())) {
    if (!which('pg_lsclusters') || !which('pg_ctlcluster')) {
      log('postgres: not installed');
      await aptInstall(['postgresql'], log);
    }
    let cluster = await pgCluster();
    if (!cluster) {
      const versions = fs.existsSync('/usr/lib/postgresql')
        ? fs
            .readdirSync('/usr/lib/postgresql')
            .filter((v) => /^\d+$/.test(v))
            .sort((a, b) => b - a)
        : [];
      if (!versions.length)
        throw new StackError('postgres: no PostgreSQL server version found in /usr/lib/postgresql');
      log(`postgres: creating cluster ${versions[0]}/main on port ${PG_PORT}`);
      await runOrThrow('pg_createcluster', 'pg_createcluster', [
        versions[0],
        'main',
        '--port',
        String(PG_PORT),
      ]);
      cluster = await pgCluster();
      if (!cluster)
        throw new StackError(`postgres: no cluster on port ${PG_PORT} after pg_createcluster`);
    }
    if (cluster.status !== 'online') {
      log(`postgres: starting cluster ${cluster.version}/${cluster.name}`);
      await runOrThrow(
        'pg_ctlcluster start',
        'pg_ctlcluster',
        ['--skip-systemctl-redirect', cluster.version, cluster.name, 'start'],
        {
          timeoutMs: 120_000,
        },
      );
      started = true;
    }
    await waitFor(`postgres on ${endpoints.postgres}`, pgIsReady, 60_000);
  }
  if (which('psql')) {
    let r = await psql('select 1');
    if (r.code !== 0 && /password|authentication/i.test(r.stderr)) {
      const cluster = await pgCluster();
      if (!cluster)
        throw new StackError(
          `postgres: psql -U postgres refused (${r.stderr.trim()}) and no Debian cluster found to fix`,
        );
      await pgTrustLocalhost(cluster, log);
      r = await psql('select 1');
      if (r.code === 0) {
        // Mirror the documented machines: users postgres and root.
        await psql(
          "do $$ begin if not exists (select 1 from pg_roles where rolname = 'root') then create role root superuser login; end if; end $$",
        );
      }
    }
    if (r.code !== 0)
      throw new StackError(
        `postgres: psql -h ${HOST} -U postgres -c 'select 1' failed: ${r.stderr.trim()}`,
      );
  }
  log(`postgres ${endpoints.postgres} ready${started ? ` (started, ${secs(t0)})` : ''}`);
  return started;
}

async function stopPostgres(log) {
  const cluster = await pgCluster();
  if (!cluster) {
    log('postgres: no cluster found, nothing to stop');
    return;
  }
  if (cluster.status !== 'online') {
    log('postgres: already stopped');
    return;
  }
  log(`postgres: stopping cluster ${cluster.version}/${cluster.name}`);
  await runOrThrow(
    'pg_ctlcluster stop',
    'pg_ctlcluster',
    ['--skip-systemctl-redirect', cluster.version, cluster.name, 'stop'],
    {
      timeoutMs: 120_000,
    },
  );
}

// ---------------------------------------------------------------------------
// Redis

async function ensureRedis(log) {
  const t0 = Date.now();
  if (await pingRedis()) {
    log(`redis ${endpoints.redis} ready`);
    return false;
  }
  if (await tcpOpen(REDIS_PORT))
    throw new StackError(
      `redis: something listens on ${endpoints.redis} but does not answer PING with +PONG`,
    );
  if (!which('redis-server')) {
    log('redis: not installed');
    await aptInstall(['redis-server'], log);
    // Debian's postinst may have started one already.
    if (await pingRedis()) {
      log(`redis ${endpoints.redis} ready (started by the package install)`);
      return true;
    }
  }
  log('redis: starting redis-server');
  await runOrThrow('redis-server', 'redis-server', [
    '--daemonize',
    'yes',
    '--bind',
    '127.0.0.1',
    '-::1',
    '--port',
    String(REDIS_PORT),
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await waitFor(`redis on ${endpoints.redis}`, pingRedis, 30_000, 100);
  log(`redis ${endpoints.redis} ready (started, ${secs(t0)})`);
  return true;
}

async function stopRedis(log) {
  if (!(await pingRedis())) {
    log('redis: already stopped');
    return;
  }
  log('redis: shutdown nosave');
  if (which('redis-cli')) {
    await run('redis-cli', ['-h', HOST, '-p', String(REDIS_PORT), 'shutdown', 'nosave'], {
      timeoutMs: 20_000,
    });
  } else {
    await tcpExchange(REDIS_PORT, Buffer.from('SHUTDOWN NOSAVE\r\n'), () => false, 5000);
  }
  await waitFor('redis shutdown', async () => !(await tcpOpen(REDIS_PORT)), 20_000);
}

// ---------------------------------------------------------------------------
// Kafka

function readKafkaPid() {
  try {
    const pid = Number.parseInt(fs.readFileSync(KAFKA_PID_FILE, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Pid of the broker that this stack started, when it is still running. */
function runningKafkaPid() {
  const pid = readKafkaPid();
  return pid && isKafkaProcess(pid) ? pid : null;
}

function kafkaLogTail(n = 40) {
  try {
    return tail(fs.readFileSync(KAFKA_SERVER_LOG, 'utf8'), n);
  } catch {
    return '(no server.log)';
  }
}

function kafkaFailure(msg) {
  let out = '';
  try {
    out = tail(fs.readFileSync(KAFKA_STDOUT_LOG, 'utf8'), 10);
  } catch {
    /* none */
  }
  return new StackError(
    `${msg}\n--- last 40 lines of ${KAFKA_SERVER_LOG} ---\n${kafkaLogTail(40)}` +
      (out ? `\n--- last lines of ${KAFKA_STDOUT_LOG} ---\n${out}` : ''),
  );
}

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function ensureJava(log) {
  if (!which('java')) {
    log('java: not installed');
    await aptInstall(['default-jre-headless'], log);
  }
}

/** Kafka jars in the cache (outside the repo); Maven is run only when they are missing or the pom changed. */
async function ensureKafkaLibs(log) {
  const want = sha256(KAFKA_POM);
  const marker = path.join(KAFKA_LIBS, KAFKA_LIBS_MARKER);
  try {
    if (fs.readFileSync(marker, 'utf8').trim() === want) return KAFKA_LIBS;
  } catch {
    /* not there yet */
  }
  if (!which('mvn')) {
    log('maven: not installed');
    await aptInstall(['maven'], log);
  }
  const t0 = Date.now();
  const tmp = `${KAFKA_LIBS}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  log(
    `kafka: fetching Kafka ${KAFKA_VERSION} jars with Maven into ${KAFKA_LIBS} (first run: may take a few minutes)`,
  );
  try {
    await runOrThrow(
      'mvn copy-dependencies',
      'mvn',
      [
        '-B',
        '-q',
        '-f',
        KAFKA_POM,
        'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies',
        '-DincludeScope=runtime',
        `-DoutputDirectory=${tmp}`,
      ],
      { timeoutMs: 15 * 60_000, cwd: path.dirname(KAFKA_POM) },
    );
    if (!fs.existsSync(path.join(tmp, `kafka_2.13-${KAFKA_VERSION}.jar`))) {
      throw new StackError(
        `mvn copy-dependencies finished but ${tmp} has no kafka_2.13-${KAFKA_VERSION}.jar`,
      );
    }
    fs.writeFileSync(path.join(tmp, KAFKA_LIBS_MARKER), `${want}\n`);
    fs.rmSync(KAFKA_LIBS, { recursive: true, force: true });
    fs.renameSync(tmp, KAFKA_LIBS);
    // CDS archives are tied to the exact jars.
    for (const f of fs.readdirSync(KAFKA_CDS_DIR)) {
      if (/\.jsa(\.partial)?$/.test(f)) fs.rmSync(path.join(KAFKA_CDS_DIR, f), { force: true });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const n = fs.readdirSync(KAFKA_LIBS).filter((f) => f.endsWith('.jar')).length;
  log(`kafka: ${n} jars cached (${secs(t0)})`);
  return KAFKA_LIBS;
}

/**
 * AppCDS (class data sharing) archive for the broker, kept next to the jars.
 * JDK 17 can only write a dynamic archive when the JVM exits, so a broker
 * started without an archive gets -XX:ArchiveClassesAtExit=<archive>.partial,
 * and stopKafka renames it into place after a clean exit (a broker that was
 * SIGKILLed or died leaves a partial file, which is thrown away). The name
 * depends on the JVM build, so a Java update simply makes a new archive.
 * LATCHKEY_KAFKA_CDS=0 turns this off.
 */
function kafkaCdsPaths() {
  if (process.env.LATCHKEY_KAFKA_CDS === '0') return null;
  const java = which('java');
  if (!java) return null;
  let key;
  try {
    const real = fs.realpathSync(java);
    const libjvm = path.join(path.dirname(real), '..', 'lib', 'server', 'libjvm.so');
    const st = fs.statSync(fs.existsSync(libjvm) ? libjvm : real);
    key = createHash('sha256')
      .update(`${real}:${st.size}:${st.mtimeMs}`)
      .digest('hex')
      .slice(0, 12);
  } catch {
    return null;
  }
  const archive = path.join(KAFKA_CDS_DIR, `kafka-${key}.jsa`);
  return { archive, partial: `${archive}.partial` };
}

function kafkaCdsOpts() {
  const cds = kafkaCdsPaths();
  if (!cds) return [];
  if (fs.existsSync(cds.archive)) return [`-XX:SharedArchiveFile=${cds.archive}`];
  // A private broker (LATCHKEY_STACK_DIR) only reads the shared archive: the shared broker may be writing it.
  if (process.env.LATCHKEY_STACK_DIR) return [];
  fs.rmSync(cds.partial, { force: true }); // left by a broker that did not exit cleanly
  return [`-XX:ArchiveClassesAtExit=${cds.partial}`];
}

/** After the broker exited: keep a completed archive, drop an incomplete one. */
function settleKafkaCds(cleanExit, log) {
  const cds = kafkaCdsPaths();
  if (!cds || !fs.existsSync(cds.partial)) return;
  if (cleanExit && fs.statSync(cds.partial).size > 0) {
    fs.renameSync(cds.partial, cds.archive);
    log('kafka: class-data-sharing archive saved (faster next start)');
  } else {
    fs.rmSync(cds.partial, { force: true });
  }
}

function extraJavaOpts() {
  return (process.env.LATCHKEY_KAFKA_JAVA_OPTS || '').split(/\s+/).filter(Boolean);
}

function kafkaServerProperties() {
  return `# Written by tools/stack/stack.mjs on every start: edit that file, not this one.
# Single-node KRaft: combined broker + controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://${HOST}:${KAFKA_PORT},CONTROLLER://${HOST}:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${HOST}:${KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${KAFKA_DATA_DIR}

# Topics
auto.create.topics.enable=true
delete.topic.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
log.retention.hours=24
log.retention.check.interval.ms=300000
log.segment.bytes=16777216
log.index.size.max.bytes=1048576

# Internal topics: replication 1, few partitions (fast creation on first use)
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=5
group.initial.rebalance.delay.ms=0

# Small machine (2 cores): few threads, small buffers
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
`;
}

function kafkaLog4j2Xml() {
  // shutdownHook="disable": Kafka's own shutdown hook logs the controlled
  // shutdown; log4j's hook would otherwise stop the appender first.
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by tools/stack/stack.mjs: edit that file, not this one. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <File name="server" fileName="\${sys:kafka.logs.dir}/server.log" append="true" immediateFlush="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Root level="INFO">
      <AppenderRef ref="server"/>
    </Root>
  </Loggers>
</Configuration>
`;
}

function writeIfChanged(file, text) {
  try {
    if (fs.readFileSync(file, 'utf8') === text) return;
  } catch {
    /* new */
  }
  fs.writeFileSync(file, text);
}

function javaArgs(libs, mainClass, args) {
  return [
    `-Dkafka.logs.dir=${KAFKA_LOG_DIR}`,
    `-Dlog4j2.configurationFile=${KAFKA_LOG4J}`,
    '-cp',
    path.join(libs, '*'),
    mainClass,
    ...args,
  ];
}

async function formatKafkaStorage(libs, log) {
  if (fs.existsSync(path.join(KAFKA_DATA_DIR, 'meta.properties'))) return;
  log(`kafka: formatting storage in ${KAFKA_DATA_DIR} (cluster id ${KAFKA_CLUSTER_ID})`);
  fs.mkdirSync(KAFKA_DATA_DIR, { recursive: true });
  await runOrThrow(
    'kafka storage format',
    'java',
    [
      '-Xmx256m',
      ...javaArgs(libs, 'kafka.tools.StorageTool', [
        'format',
        '-t',
        KAFKA_CLUSTER_ID,
        '-c',
        KAFKA_PROPS,
        '--ignore-formatted',
      ]),
    ],
    { timeoutMs: 120_000 },
  );
}

/** Size of server.log (the readiness scan starts there); rolls it over when it got big. */
function prepareServerLog() {
  let size = 0;
  try {
    size = fs.statSync(KAFKA_SERVER_LOG).size;
  } catch {
    return 0;
  }
  if (size > 64 * 1024 * 1024) {
    fs.renameSync(KAFKA_SERVER_LOG, `${KAFKA_SERVER_LOG}.1`);
    return 0;
  }
  return size;
}

function makeLogScanner(file, fromOffset, needle) {
  let offset = fromOffset;
  let carry = '';
  return () => {
    let fd;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return false;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < offset) offset = 0; // truncated or rolled
      while (offset < size) {
        const buf = Buffer.alloc(Math.min(1 << 20, size - offset));
        const n = fs.readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) break;
        offset += n;
        const text = carry + buf.subarray(0, n).toString('utf8');
        if (text.includes(needle)) return true;
        carry = text.slice(-needle.length);
      }
      return false;
    } finally {
      fs.closeSync(fd);
    }
  };
}

async function waitKafkaReady(pid, logOffset, timeoutMs) {
  const started =
    logOffset === null ? () => true : makeLogScanner(KAFKA_SERVER_LOG, logOffset, KAFKA_READY_LINE);
  const deadline = Date.now() + timeoutMs;
  let sawLine = false;
  for (;;) {
    if (!sawLine) sawLine = started();
    if (sawLine && (await pingKafka())) return;
    if (!pidAlive(pid)) throw kafkaFailure(`kafka: broker process ${pid} exited during startup`);
    if (Date.now() > deadline) {
      const err = kafkaFailure(
        `kafka: not ready on ${endpoints.kafka} after ${timeoutMs / 1000}s (pid ${pid})`,
      );
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      fs.rmSync(KAFKA_PID_FILE, { force: true });
      throw err;
    }
    await sleep(250);
  }
}

async function startKafkaUnlocked({ log = defaultLog, timeoutMs = KAFKA_START_TIMEOUT_MS } = {}) {
  const t0 = Date.now();
  let pid = runningKafkaPid();
  if (await pingKafka()) {
    log(`kafka ${endpoints.kafka} ready${pid ? ` (pid ${pid})` : ' (not started by this stack)'}`);
    return { started: false, pid };
  }
  if (pid) {
    // Ours and alive but not answering yet (still starting, or shutting down).
    log(`kafka: broker pid ${pid} is running but not answering yet, waiting`);
    try {
      await waitKafkaReady(pid, null, timeoutMs);
      log(`kafka ${endpoints.kafka} ready (pid ${pid}, ${secs(t0)})`);
      return { started: false, pid };
    } catch (err) {
      if (pidAlive(pid)) throw err;
      log(`kafka: pid ${pid} exited, starting a new broker`);
    }
  }
  if (await tcpOpen(KAFKA_PORT))
    throw new StackError(
      `kafka: port ${endpoints.kafka} is taken by something that does not answer Kafka requests`,
    );
  if (await tcpOpen(KAFKA_CONTROLLER_PORT))
    throw new StackError(
      `kafka: controller port ${HOST}:${KAFKA_CONTROLLER_PORT} is already taken`,
    );

  await ensureJava(log);
  const libs = await ensureKafkaLibs(log);
  fs.mkdirSync(KAFKA_DATA_DIR, { recursive: true });
  fs.mkdirSync(KAFKA_LOG_DIR, { recursive: true });
  writeIfChanged(KAFKA_PROPS, kafkaServerProperties());
  writeIfChanged(KAFKA_LOG4J, kafkaLog4j2Xml());
  await formatKafkaStorage(libs, log);

  for (let attempt = 1; ; attempt++) {
    const cdsOpts = kafkaCdsOpts();
    const logOffset = prepareServerLog();
    pid = spawnKafka(libs, cdsOpts);
    fs.writeFileSync(KAFKA_PID_FILE, `${pid}\n`);
    updateState({ kafka: true });
    log(`kafka: broker starting (pid ${pid}), waiting for "${KAFKA_READY_LINE}"`);
    try {
      await waitKafkaReady(pid, logOffset, timeoutMs);
      await warmKafkaGroups(log);
      break;
    } catch (err) {
      const usedArchive = cdsOpts.find((o) => o.startsWith('-XX:SharedArchiveFile='));
      if (attempt > 1 || !usedArchive || pidAlive(pid)) throw err;
      // A damaged class-data-sharing archive can crash the JVM at start: drop it and retry once.
      log(
        'kafka: broker died at start while using the class-data-sharing archive; deleting it and retrying',
      );
      fs.rmSync(usedArchive.slice(usedArchive.indexOf('=') + 1), { force: true });
    }
  }
  log(`kafka ${endpoints.kafka} ready (started, pid ${pid}, ${secs(t0)})`);
  return { started: true, pid };
}

/** Spawn the broker JVM detached (own session, output to a file) so it outlives the caller. */
function spawnKafka(libs, cdsOpts) {
  try {
    if (fs.statSync(KAFKA_STDOUT_LOG).size > 16 * 1024 * 1024)
      fs.renameSync(KAFKA_STDOUT_LOG, `${KAFKA_STDOUT_LOG}.1`);
  } catch {
    /* no file yet */
  }
  const out = fs.openSync(KAFKA_STDOUT_LOG, 'a');
  let child;
  try {
    const jvmOpts = [...KAFKA_JVM_OPTS, ...cdsOpts, ...extraJavaOpts()];
    child = spawn('java', [...jvmOpts, ...javaArgs(libs, 'kafka.Kafka', [KAFKA_PROPS])], {
      cwd: KAFKA_DIR,
      detached: true,
      stdio: ['ignore', out, out],
    });
  } finally {
    fs.closeSync(out);
  }
  child.on('error', () => {}); // shows up as a missing pid or a dead process
  child.unref();
  if (!child.pid) throw new StackError('kafka: could not spawn java (is it on PATH?)');
  return child.pid;
}

async function stopKafkaUnlocked({ log = defaultLog, timeoutMs = KAFKA_STOP_TIMEOUT_MS } = {}) {
  const pid = runningKafkaPid();
  if (!pid) {
    fs.rmSync(KAFKA_PID_FILE, { force: true });
    if (await pingKafka()) {
      throw new StackError(
        `kafka: a broker answers on ${endpoints.kafka} but it was not started by this stack (no live pid in ${KAFKA_PID_FILE})`,
      );
    }
    log('kafka: not running');
    return false;
  }
  const t0 = Date.now();
  log(`kafka: SIGTERM to pid ${pid} (controlled shutdown)`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
  const cleanExit = !pidAlive(pid);
  if (!cleanExit) {
    log(`kafka: still running after ${timeoutMs / 1000}s, SIGKILL`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    const killDeadline = Date.now() + 10_000;
    while (pidAlive(pid) && Date.now() < killDeadline) await sleep(100);
    if (pidAlive(pid)) throw new StackError(`kafka: pid ${pid} survived SIGKILL`);
  }
  fs.rmSync(KAFKA_PID_FILE, { force: true });
  settleKafkaCds(cleanExit, log);
  await waitFor('kafka port release', async () => !(await tcpOpen(KAFKA_PORT)), 10_000, 100);
  log(`kafka: stopped (${secs(t0)})`);
  return true;
}

/**
 * Start the broker (same data dir) and wait until it accepts Kafka requests.
 * No-op when one already answers. Usable from any process: state lives in
 * .stack/kafka/kafka.pid.
 * @param {{ log?: (msg: string) => void, timeoutMs?: number }} [opts]
 * @returns {Promise<{ started: boolean, pid: number | null }>}
 */
export function startKafka(opts = {}) {
  return withLock(() => startKafkaUnlocked(opts));
}

/**
 * Stop the broker that this stack started (pid file): SIGTERM, wait up to 30 s, then SIGKILL.
 * @param {{ log?: (msg: string) => void, timeoutMs?: number }} [opts]
 * @returns {Promise<boolean>} true when a broker was stopped
 */
export function stopKafka(opts = {}) {
  return withLock(() => stopKafkaUnlocked(opts));
}

// ---------------------------------------------------------------------------
// up / down / status

/**
 * Make sure PostgreSQL, Redis and Kafka answer on 127.0.0.1 (idempotent).
 * @param {{ log?: (msg: string) => void }} [opts]
 * @returns {Promise<{ postgres: boolean, redis: boolean, kafka: boolean }>} what `up` has started (merged state)
 */
export function up({ log = defaultLog } = {}) {
  return withLock(async () => {
    const t0 = Date.now();
    fs.mkdirSync(STACK_DIR, { recursive: true });
    const prev = readState();
    const pg = await ensurePostgres(log);
    updateState({ postgres: pg || prev.postgres === true });
    const redis = await ensureRedis(log);
    updateState({ redis: redis || prev.redis === true });
    const kafka = await startKafkaUnlocked({ log });
    // Ours when just started, when the state already said so, or when the live broker is ours (pid file).
    const state = updateState({
      kafka: kafka.started || prev.kafka === true || kafka.pid !== null,
    });
    log(`stack up (${secs(t0)})`);
    return { postgres: !!state.postgres, redis: !!state.redis, kafka: !!state.kafka };
  });
}

/**
 * Stop only what `up` started (per .stack/state.json), then forget it.
 * @param {{ log?: (msg: string) => void }} [opts]
 */
export function down({ log = defaultLog } = {}) {
  return withLock(async () => {
    const state = readState();
    if (runningKafkaPid()) {
      // A live pid file means this stack started the broker (up or startKafka).
      await stopKafkaUnlocked({ log });
    } else if (state.kafka) {
      fs.rmSync(KAFKA_PID_FILE, { force: true });
      log('kafka: not running');
    } else {
      log('kafka: not started by up, left alone');
    }
    updateState({ kafka: undefined });
    if (state.redis) {
      await stopRedis(log);
    } else {
      log('redis: not started by up, left alone');
    }
    updateState({ redis: undefined });
    if (state.postgres) {
      await stopPostgres(log);
    } else {
      log('postgres: not started by up, left alone');
    }
    updateState({ postgres: undefined });
  });
}

/**
 * @returns {Promise<Array<{ name: string, address: string, up: boolean, startedByUp: boolean, pid: number | null }>>}
 */
export async function status() {
  const state = readState();
  const [pgUp, redisUp, kafkaUp] = await Promise.all([pgIsReady(), pingRedis(), pingKafka()]);
  return [
    {
      name: 'postgres',
      address: endpoints.postgres,
      up: pgUp,
      startedByUp: !!state.postgres,
      pid: null,
    },
    { name: 'redis', address: endpoints.redis, up: redisUp, startedByUp: !!state.redis, pid: null },
    {
      name: 'kafka',
      address: endpoints.kafka,
      up: kafkaUp,
      startedByUp: !!state.kafka,
      pid: runningKafkaPid(),
    },
  ];
}

export function formatStatus(rows) {
  return rows
    .map(
      (r) =>
        `${r.name.padEnd(9)} ${r.address.padEnd(15)} ${(r.up ? 'up' : 'down').padEnd(5)} started-by-up: ${r.startedByUp ? 'yes' : 'no'}` +
        (r.pid ? `  pid ${r.pid}` : ''),
    )
    .join('\n');
}

// ---------------------------------------------------------------------------
// CLI

const USAGE = `usage: node tools/stack/stack.mjs <command>
  up           start PostgreSQL, Redis and Kafka if needed and wait until ready
  down         stop what "up" started
  status       one line per component (--json: machine-readable)
  kafka-stop   stop the Kafka broker started by this stack
  kafka-start  start it again (same data dir) and wait until ready`;

async function main(argv) {
  const cmd = argv[0];
  switch (cmd) {
    case 'up':
      await up();
      return 0;
    case 'down':
      await down();
      return 0;
    case 'status': {
      const rows = await status();
      process.stdout.write(
        argv.includes('--json') ? `${JSON.stringify(rows)}\n` : `${formatStatus(rows)}\n`,
      );
      return 0;
    }
    case 'kafka-start':
      await startKafka();
      return 0;
    case 'kafka-stop':
      await stopKafka();
      return 0;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(`${cmd ? `unknown command: ${cmd}\n` : ''}${USAGE}\n`);
      return 2;
  }
}

function isMain() {
  if (!process.argv[1]) return false;
  try {
    return fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(
        `[stack] error: ${err instanceof StackError ? err.message : (err && err.stack) || err}\n`,
      );
      process.exitCode = 1;
    },
  );
}
