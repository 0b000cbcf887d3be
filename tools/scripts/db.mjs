#!/usr/bin/env node
// Databases of the latchkey services: one PostgreSQL database per service.
//
//   node tools/scripts/db.mjs ensure   [svc...]   create missing databases (safe to run concurrently)
//   node tools/scripts/db.mjs generate [svc...] [--force]
//                                                 Prisma client -> apps/<svc>/src/generated/prisma
//                                                 (skipped when schema + Prisma version are unchanged)
//   node tools/scripts/db.mjs migrate  [svc...] [--name <name>] [--create-only]
//                                                 developers: prisma migrate dev (+ generate)
//   node tools/scripts/db.mjs deploy   [svc...]   ensure + prisma migrate deploy (CI, tests, prod)
//   node tools/scripts/db.mjs status   [svc...]   prisma migrate status
//   node tools/scripts/db.mjs reset    [svc...] [--force]
//                                                 tests: drop, recreate, migrate deploy
//   node tools/scripts/db.mjs url      [svc...]   print each service's database URL
// No svc = all four. Also importable: ensureDatabases, generateClients, deployMigrations, ...
//
// Database URL of a service (same rule as libs/service-kit/src/database/prisma-adapter.ts):
//   $<SVC>_DATABASE_URL, else $DATABASE_URL, else postgresql://$PGUSER(postgres):$PGPASSWORD@
//   $PGHOST(127.0.0.1):$PGPORT(5432)/$LATCHKEY_DB_PREFIX(latchkey_)<svc>.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

export const SERVICES = Object.freeze(['registration', 'provisioning', 'auth', 'audit']);
export const DEFAULT_DB_PREFIX = 'latchkey_';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PRISMA_CLI = path.join(ROOT, 'node_modules', 'prisma', 'build', 'index.js');
const STAMP_FILE = '.latchkey-generate.json';
const CONNECT_TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------- URLs

export function databaseNameFor(service, env = process.env) {
  if (!/^[a-z_][a-z0-9_]*$/.test(service)) throw new Error(`Invalid service name: ${service}`);
  const prefix = env.LATCHKEY_DB_PREFIX || DEFAULT_DB_PREFIX;
  if (!/^[a-z0-9_]*$/.test(prefix)) {
    throw new Error(`LATCHKEY_DB_PREFIX may contain only a-z, 0-9 and _ (got ${prefix})`);
  }
  const name = prefix + service;
  if (name.length > 63) throw new Error(`Database name too long for PostgreSQL: ${name}`);
  return name;
}

export function databaseUrlFor(service, env = process.env) {
  const own = env[`${service.toUpperCase()}_DATABASE_URL`];
  if (own) return own;
  if (env.DATABASE_URL) return env.DATABASE_URL;
  const database = databaseNameFor(service, env);
  const user = env.PGUSER || 'postgres';
  const password = env.PGPASSWORD;
  const rawHost = env.PGHOST || '127.0.0.1';
  const port = env.PGPORT || '5432';
  const auth = encodeURIComponent(user) + (password ? `:${encodeURIComponent(password)}` : '');
  if (rawHost.startsWith('/')) {
    return `postgresql://${auth}@localhost:${port}/${database}?host=${encodeURIComponent(rawHost)}`;
  }
  const host = rawHost.includes(':') ? `[${rawHost}]` : rawHost;
  return `postgresql://${auth}@${host}:${port}/${database}`;
}

/** Discrete node-postgres settings from a postgresql:// URL (subset of the TypeScript helper). */
export function pgConfigFromUrl(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new Error('Invalid database URL: not a URL');
  }
  if (u.protocol !== 'postgresql:' && u.protocol !== 'postgres:') {
    throw new Error(`Invalid database URL: scheme must be postgresql:// (got ${u.protocol}//)`);
  }
  const q = u.searchParams;
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database) throw new Error('Invalid database URL: no database name in the path');
  let host = u.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const config = {
    host: q.get('host') ?? (host || '127.0.0.1'),
    port: Number(q.get('port') ?? u.port ?? '') || 5432,
    user: decodeURIComponent(u.username) || 'postgres',
    database,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  };
  if (u.password !== '') config.password = decodeURIComponent(u.password);
  const sslmode = q.get('sslmode');
  if (sslmode === 'require' || sslmode === 'no-verify') config.ssl = { rejectUnauthorized: false };
  else if (sslmode === 'verify-ca' || sslmode === 'verify-full')
    config.ssl = { rejectUnauthorized: true };
  else if (sslmode && !['disable', 'allow', 'prefer'].includes(sslmode)) {
    throw new Error(`Invalid database URL: unknown sslmode ${sslmode}`);
  }
  return config;
}

/** The URL of every service, refusing one shared $DATABASE_URL for several services. */
function urlsFor(services, env = process.env) {
  if (services.length > 1 && env.DATABASE_URL) {
    const shared = services.filter((s) => !env[`${s.toUpperCase()}_DATABASE_URL`]);
    if (shared.length > 1) {
      throw new DbError(
        `DATABASE_URL names one database but ${shared.length} services were selected (${shared.join(', ')}).\n` +
          'Unset DATABASE_URL (URLs are then derived from PG* and LATCHKEY_DB_PREFIX), name one service, ' +
          'or set <SERVICE>_DATABASE_URL for each.',
      );
    }
  }
  return new Map(services.map((s) => [s, databaseUrlFor(s, env)]));
}

function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}

// ---------------------------------------------------------------- helpers

export class DbError extends Error {
  constructor(message, output = '') {
    super(message);
    this.name = 'DbError';
    this.output = output;
  }
}

function normalizeServices(services) {
  const list = services && services.length ? [...new Set(services)] : [...SERVICES];
  const unknown = list.filter((s) => !SERVICES.includes(s));
  if (unknown.length)
    throw new DbError(`Unknown service(s): ${unknown.join(', ')} (known: ${SERVICES.join(', ')})`);
  return list;
}

function log(quiet, line) {
  if (!quiet) process.stdout.write(`${line}\n`);
}

function seconds(start) {
  return `${((performance.now() - start) / 1000).toFixed(1)}s`;
}

/** Run `fn` over `items` with at most `limit` at a time; all settle, then the first error is thrown. */
async function eachLimited(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { ok: true, value: await fn(items[i]) };
      } catch (error) {
        results[i] = { ok: false, error };
      }
    }
  });
  await Promise.all(workers);
  const failed = results.find((r) => !r.ok);
  if (failed) throw failed.error;
  return results.map((r) => r.value);
}

const PARALLEL =
  Number(process.env.LATCHKEY_DB_PARALLEL) ||
  Math.max(1, Math.min(4, (os.availableParallelism?.() ?? os.cpus().length) || 1));

/** Run the Prisma CLI for one service; resolves with its output, rejects with DbError carrying it. */
function prisma(service, url, args, { interactive = false } = {}) {
  const config = path.join('apps', service, 'prisma.config.ts');
  const argv = [PRISMA_CLI, ...args, '--config', config];
  const env = {
    ...process.env,
    DATABASE_URL: url,
    CHECKPOINT_DISABLE: '1', // no telemetry/update check (no network here)
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    PRISMA_GENERATE_NO_HINTS: '1',
    NO_COLOR: process.env.NO_COLOR ?? (interactive ? undefined : '1'),
  };
  if (env.NO_COLOR === undefined) delete env.NO_COLOR;
  const printable = `prisma ${args.join(' ')} --config ${config}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, {
      cwd: ROOT,
      env,
      stdio: interactive ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
    child.on('error', (err) =>
      reject(new DbError(`${service}: cannot run ${printable}: ${err.message}`)),
    );
    child.on('close', (code, signal) => {
      if (code === 0) resolve(output);
      else
        reject(
          new DbError(`${service}: ${printable} failed (${signal ?? `exit ${code}`})`, output),
        );
    });
  });
}

async function withClient(config, fn) {
  const client = new pg.Client(config);
  client.on('error', () => {}); // a dying idle connection must not crash the script
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

function unreachable(err, config) {
  const code = err && err.code ? ` (${err.code})` : '';
  return new DbError(
    `PostgreSQL not reachable at ${config.host}:${config.port}${code}: ${err.message}\n` +
      'Local start: pg_ctlcluster --skip-systemctl-redirect 15 main start',
  );
}

const quoteIdent = (name) => `"${name.replace(/"/g, '""')}"`;

// Key of the advisory lock that serialises CREATE/DROP DATABASE between concurrent runs.
const DDL_LOCK_KEY = 0x4c4b4442; // 'LKDB'

async function maintenance(config, fn) {
  const admin = { ...config, database: process.env.LATCHKEY_MAINTENANCE_DB || 'postgres' };
  try {
    return await withClient(admin, async (client) => {
      await client.query('SELECT pg_advisory_lock($1)', [DDL_LOCK_KEY]);
      try {
        return await fn(client);
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [DDL_LOCK_KEY]).catch(() => {});
      }
    });
  } catch (err) {
    if (err instanceof DbError) throw err;
    if (
      ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(err.code) ||
      /timeout/i.test(err.message)
    ) {
      throw unreachable(err, config);
    }
    throw err;
  }
}

/** Create the database of `url` when missing. Returns true when it was created. */
async function ensureDatabase(url) {
  const config = pgConfigFromUrl(url);
  try {
    await withClient(config, async () => {});
    return false; // it exists and we can connect
  } catch (err) {
    if (err.code !== '3D000') {
      // 3D000 = invalid_catalog_name: the database does not exist
      if (
        ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(err.code) ||
        /timeout/i.test(err.message)
      ) {
        throw unreachable(err, config);
      }
      throw new DbError(`cannot connect to ${config.database}: ${err.message}`);
    }
  }
  return maintenance(config, async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      config.database,
    ]);
    if (rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(config.database)}`);
      return true;
    } catch (err) {
      // duplicate_database / unique_violation: someone else (without our lock) won the race
      if (err.code === '42P04' || err.code === '23505') return false;
      throw new DbError(`CREATE DATABASE ${config.database} failed: ${err.message}`);
    }
  });
}

// ---------------------------------------------------------------- commands

/** Create each service's database when missing. */
export async function ensureDatabases(services, { quiet = false, env = process.env } = {}) {
  const list = normalizeServices(services);
  const urls = urlsFor(list, env);
  await eachLimited(list, PARALLEL, async (svc) => {
    const created = await ensureDatabase(urls.get(svc));
    log(
      quiet,
      `db: ${svc}: database ${pgConfigFromUrl(urls.get(svc)).database} ${created ? 'created' : 'exists'}`,
    );
  });
}

function generateFingerprint(service) {
  const schemaPath = path.join(ROOT, 'apps', service, 'prisma', 'schema.prisma');
  const hash = createHash('sha256');
  hash.update(fs.readFileSync(schemaPath));
  for (const pkg of ['prisma', '@prisma/client']) {
    const pj = path.join(ROOT, 'node_modules', pkg, 'package.json');
    hash.update(
      `\n${pkg}@${fs.existsSync(pj) ? JSON.parse(fs.readFileSync(pj, 'utf8')).version : '?'}`,
    );
  }
  return hash.digest('hex');
}

function generatedDir(service) {
  return path.join(ROOT, 'apps', service, 'src', 'generated', 'prisma');
}

function isUpToDate(service, fingerprint) {
  const dir = generatedDir(service);
  try {
    const stamp = JSON.parse(fs.readFileSync(path.join(dir, STAMP_FILE), 'utf8'));
    return stamp.fingerprint === fingerprint && fs.existsSync(path.join(dir, 'client.ts'));
  } catch {
    return false;
  }
}

/** Generate each service's Prisma client, unless its schema and the Prisma version are unchanged. */
export async function generateClients(
  services,
  { force = false, quiet = false, env = process.env } = {},
) {
  const list = normalizeServices(services);
  await eachLimited(list, PARALLEL, async (svc) => {
    const fingerprint = generateFingerprint(svc);
    if (!force && isUpToDate(svc, fingerprint)) {
      log(quiet, `db: ${svc}: client up to date`);
      return;
    }
    const t = performance.now();
    // generate never connects; the URL only satisfies the schema's env("DATABASE_URL").
    await prisma(svc, databaseUrlFor(svc, env), ['generate']);
    fs.writeFileSync(
      path.join(generatedDir(svc), STAMP_FILE),
      `${JSON.stringify({ fingerprint, generatedAt: new Date().toISOString() })}\n`,
    );
    log(quiet, `db: ${svc}: client generated (${seconds(t)})`);
  });
}

/** Create missing databases and apply pending migrations (prisma migrate deploy). */
export async function deployMigrations(services, { quiet = false, env = process.env } = {}) {
  const list = normalizeServices(services);
  const urls = urlsFor(list, env);
  await eachLimited(list, PARALLEL, async (svc) => {
    const t = performance.now();
    const created = await ensureDatabase(urls.get(svc));
    const out = await prisma(svc, urls.get(svc), ['migrate', 'deploy']);
    const applied = /(\d+) migrations? found/.exec(out);
    const none = /No pending migrations to apply/.test(out);
    log(
      quiet,
      `db: ${svc}: ${created ? 'database created, ' : ''}${none ? 'no pending migrations' : 'migrations applied'}` +
        `${applied ? ` (${applied[1]} in folder)` : ''} (${seconds(t)})`,
    );
  });
}

/**
 * Developers: apply pending migrations, then `prisma migrate dev` (creates a migration when the
 * schema changed; interactive), then generate the client.
 */
export async function migrateDev(services, { name, createOnly = false, env = process.env } = {}) {
  const list = normalizeServices(services);
  const urls = urlsFor(list, env);
  for (const svc of list) {
    await ensureDatabase(urls.get(svc));
    // Prisma 6.19's WebAssembly schema engine fails in `migrate dev` when migrations are pending
    // ("PostgreSQL shadow DB must be provided through an external factory", EvaluateDataLoss):
    // apply them first with `migrate deploy`.
    await prisma(svc, urls.get(svc), ['migrate', 'deploy']);
    const args = ['migrate', 'dev', '--skip-generate', '--skip-seed'];
    if (name) args.push('--name', name);
    if (createOnly) args.push('--create-only');
    process.stdout.write(`db: ${svc}: prisma ${args.join(' ')}\n`);
    await prisma(svc, urls.get(svc), args, { interactive: true });
  }
  if (!createOnly) await generateClients(list, { env });
}

export async function migrationStatus(services, { env = process.env } = {}) {
  const list = normalizeServices(services);
  const urls = urlsFor(list, env);
  for (const svc of list) {
    let out;
    try {
      out = await prisma(svc, urls.get(svc), ['migrate', 'status']);
    } catch (err) {
      out = err.output ?? '';
      if (!/not yet been applied|failed|drift/i.test(out)) throw err;
    }
    const summary = out
      .split('\n')
      .filter(
        (l) =>
          l.trim() &&
          !/^(Loaded Prisma config|Prisma config detected|Prisma schema loaded|Datasource|WARNING|- url|The values from|We recommend)/.test(
            l.trim(),
          ),
      )
      .join('\n  ');
    process.stdout.write(`db: ${svc}:\n  ${summary}\n`);
  }
}

/** Tests: drop each database (disconnecting its sessions), recreate it and apply the migrations. */
export async function resetDatabases(
  services,
  { force = false, migrate = true, quiet = false, env = process.env } = {},
) {
  const list = normalizeServices(services);
  if (env.NODE_ENV === 'production' && !force) {
    throw new DbError('refusing to reset databases with NODE_ENV=production (use --force)');
  }
  const urls = urlsFor(list, env);
  await eachLimited(list, PARALLEL, async (svc) => {
    const t = performance.now();
    const config = pgConfigFromUrl(urls.get(svc));
    await maintenance(config, async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(config.database)} WITH (FORCE)`);
      await client.query(`CREATE DATABASE ${quoteIdent(config.database)}`);
    });
    if (migrate) await prisma(svc, urls.get(svc), ['migrate', 'deploy']);
    log(
      quiet,
      `db: ${svc}: ${config.database} reset${migrate ? ' and migrated' : ''} (${seconds(t)})`,
    );
  });
}

// ---------------------------------------------------------------- CLI

const USAGE = `usage: node tools/scripts/db.mjs <ensure|generate|migrate|deploy|status|reset|url> [service...] [options]
  services: ${SERVICES.join(' ')} (default: all)
  generate --force            regenerate even when up to date
  migrate  --name <n>         migration name;  --create-only  create the SQL without applying it
  reset    --force            allow with NODE_ENV=production`;

async function main(argv) {
  const [command, ...rest] = argv;
  const services = [];
  const opts = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--force') opts.force = true;
    else if (a === '--create-only') opts.createOnly = true;
    else if (a === '--name') opts.name = rest[++i];
    else if (a.startsWith('--name=')) opts.name = a.slice(7);
    else if (a === '-h' || a === '--help') return void process.stdout.write(`${USAGE}\n`);
    else if (a.startsWith('-')) throw new DbError(`unknown option ${a}\n${USAGE}`);
    else services.push(a);
  }
  const t = performance.now();
  switch (command) {
    case 'ensure':
      await ensureDatabases(services);
      break;
    case 'generate':
      await generateClients(services, { force: !!opts.force });
      break;
    case 'migrate':
      await migrateDev(services, { name: opts.name, createOnly: !!opts.createOnly });
      break;
    case 'deploy':
      await deployMigrations(services);
      break;
    case 'status':
      await migrationStatus(services);
      break;
    case 'reset':
      await resetDatabases(services, { force: !!opts.force });
      break;
    case 'url':
      for (const [svc, url] of urlsFor(normalizeServices(services)))
        process.stdout.write(`${svc} ${redact(url)}\n`);
      return;
    default:
      throw new DbError(`${command ? `unknown command ${command}` : 'no command'}\n${USAGE}`);
  }
  process.stdout.write(`db: ${command} done (${seconds(t)})\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((err) => {
    if (err instanceof DbError) {
      if (err.output) process.stderr.write(`${err.output.trimEnd()}\n`);
      process.stderr.write(`db: ${err.message}\n`);
    } else {
      process.stderr.write(`db: ${err.stack ?? err}\n`);
    }
    process.exit(1);
  });
}
