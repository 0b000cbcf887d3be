import { PrismaPg } from '@prisma/adapter-pg';
import type { PoolConfig } from 'pg';

/**
 * Database connection helpers shared by the four services (run time) and by
 * `apps/<service>/prisma.config.ts` (Prisma CLI). `tools/scripts/db.mjs` applies
 * the same rules in plain JavaScript: keep the two in step.
 *
 * Why discrete fields: `PrismaPg` must get host/port/user/password/database, not
 * a `connectionString` — with a connection string the migrate shadow database
 * name is overridden (P3006), see STACK-NOTES.md.
 */

export const DEFAULT_DB_PREFIX = 'latchkey_';

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** Pool settings that are not part of the URL. */
export interface PgAdapterOptions {
  /** Maximum pool size (default 10). */
  max?: number;
  /** Give up opening a connection after this long (default 5 s): a down PostgreSQL fails fast. */
  connectionTimeoutMillis?: number;
  /** Close connections idle for this long (default 30 s). */
  idleTimeoutMillis?: number;
  /** Server-side `statement_timeout` in ms (default: none). */
  statementTimeoutMillis?: number;
  /** Client-side query timeout in ms: covers a server that stops answering (default: none). */
  queryTimeoutMillis?: number;
  /** `application_name` shown in pg_stat_activity (default: the URL's, else none). */
  applicationName?: string;
  /**
   * Let the process exit while idle connections are open (default false). CLIs want
   * this: otherwise an idle pool keeps Node alive for `idleTimeoutMillis`.
   */
  allowExitOnIdle?: boolean;
}

/** What a PostgreSQL URL says, in the discrete form `pg.Pool` and `PrismaPg` want. */
export interface PgUrlConfig {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** `?schema=` (Prisma convention): the PostgreSQL schema, default `public`. */
  schema?: string;
  ssl?: PoolConfig['ssl'];
  application_name?: string;
  connectionTimeoutMillis?: number;
}

/**
 * Parse `postgres://` / `postgresql://` URLs. User, password and database are
 * percent-decoded (a password with `@ : / # ? %` must be percent-encoded in the URL).
 * Supported query parameters: `schema`, `sslmode`, `host` (e.g. a Unix socket
 * directory), `port`, `application_name`, `connect_timeout` (seconds).
 */
export function parseDatabaseUrl(url: string): PgUrlConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('Invalid database URL: not a URL');
  }
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') {
    throw new Error(
      `Invalid database URL: scheme must be postgresql:// (got ${parsed.protocol}//)`,
    );
  }
  const q = parsed.searchParams;
  const database = decode(parsed.pathname.replace(/^\//, ''));
  if (!database) throw new Error('Invalid database URL: no database name in the path');

  let host = parsed.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1); // IPv6 literal
  host = q.get('host') ?? (host || '127.0.0.1');
  const portText = q.get('port') ?? parsed.port;
  const port = portText ? Number(portText) : 5432;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`Invalid database URL: bad port ${portText}`);
  }

  const config: PgUrlConfig = {
    host,
    port,
    user: decode(parsed.username) || 'postgres',
    database,
  };
  if (parsed.password !== '') config.password = decode(parsed.password);
  const schema = q.get('schema');
  if (schema) config.schema = schema;
  const sslmode = q.get('sslmode');
  if (sslmode) config.ssl = sslFor(sslmode);
  const applicationName = q.get('application_name');
  if (applicationName) config.application_name = applicationName;
  const connectTimeout = q.get('connect_timeout');
  if (connectTimeout && Number(connectTimeout) > 0) {
    config.connectionTimeoutMillis = Number(connectTimeout) * 1000;
  }
  return config;
}

/**
 * A Prisma driver adapter for `url`, with a bounded pool and timeouts so that
 * when PostgreSQL is down queries fail within seconds instead of hanging, and
 * the pool recovers by itself when it returns.
 *
 * `options` may be just the pool size: `pgAdapterFromUrl(url, 5)`.
 */
export function pgAdapterFromUrl(url: string, options: PgAdapterOptions | number = {}): PrismaPg {
  const { config, schema } = pgPoolConfigFromUrl(url, options);
  return new PrismaPg(config, schema ? { schema } : undefined);
}

/** The `pg.Pool` settings `pgAdapterFromUrl` uses, and the schema of the URL. */
export function pgPoolConfigFromUrl(
  url: string,
  options: PgAdapterOptions | number = {},
): { config: PoolConfig; schema?: string } {
  const opts: PgAdapterOptions = typeof options === 'number' ? { max: options } : options;
  const { schema, ...pool } = parseDatabaseUrl(url);
  const config: PoolConfig = {
    ...pool,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectionTimeoutMillis ?? pool.connectionTimeoutMillis ?? 5_000,
    idleTimeoutMillis: opts.idleTimeoutMillis ?? 30_000,
    keepAlive: true,
  };
  if (opts.statementTimeoutMillis !== undefined)
    config.statement_timeout = opts.statementTimeoutMillis;
  if (opts.queryTimeoutMillis !== undefined) config.query_timeout = opts.queryTimeoutMillis;
  if (opts.applicationName !== undefined) config.application_name = opts.applicationName;
  if (opts.allowExitOnIdle) config.allowExitOnIdle = true;
  return schema ? { config, schema } : { config };
}

/** `LATCHKEY_DB_PREFIX` (default `latchkey_`) + service, e.g. `latchkey_registration`. */
export function databaseNameFor(service: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!IDENTIFIER.test(service)) throw new Error(`Invalid service name for a database: ${service}`);
  const prefix = env.LATCHKEY_DB_PREFIX || DEFAULT_DB_PREFIX;
  if (!/^[a-z0-9_]*$/.test(prefix)) {
    throw new Error(`LATCHKEY_DB_PREFIX may contain only a-z, 0-9 and _ (got ${prefix})`);
  }
  const name = prefix + service;
  if (name.length > 63) throw new Error(`Database name too long for PostgreSQL: ${name}`);
  return name;
}

/**
 * The database URL of `service`:
 * 1. `<SERVICE>_DATABASE_URL` (e.g. `REGISTRATION_DATABASE_URL`) when set;
 * 2. else `DATABASE_URL` when set (one process = one service, as in a pod);
 * 3. else built from `PGHOST` (127.0.0.1), `PGPORT` (5432), `PGUSER` (postgres),
 *    `PGPASSWORD` and the database `LATCHKEY_DB_PREFIX` + service.
 */
export function databaseUrlFor(service: string, env: NodeJS.ProcessEnv = process.env): string {
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
    // Unix socket directory: libpq-style `?host=`.
    return `postgresql://${auth}@localhost:${port}/${database}?host=${encodeURIComponent(rawHost)}`;
  }
  const host = rawHost.includes(':') ? `[${rawHost}]` : rawHost;
  return `postgresql://${auth}@${host}:${port}/${database}`;
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new Error('Invalid database URL: bad percent-encoding');
  }
}

function sslFor(sslmode: string): PoolConfig['ssl'] {
  switch (sslmode) {
    case 'disable':
      return false;
    case 'prefer':
    case 'allow':
      // node-postgres cannot try TLS and fall back to plaintext as libpq does: no TLS.
      return false;
    case 'require':
    case 'no-verify':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return { rejectUnauthorized: true };
    default:
      throw new Error(`Invalid database URL: unknown sslmode ${sslmode}`);
  }
}
