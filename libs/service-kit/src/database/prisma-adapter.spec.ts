import { PrismaPg } from '@prisma/adapter-pg';
import type { PoolConfig } from 'pg';
import {
  databaseNameFor,
  databaseUrlFor,
  parseDatabaseUrl,
  pgAdapterFromUrl,
} from './prisma-adapter';

/** The pool settings PrismaPg was constructed with (a private field of the factory). */
function poolConfigOf(adapter: PrismaPg): PoolConfig {
  return (adapter as unknown as { config: PoolConfig }).config;
}
function optionsOf(adapter: PrismaPg): { schema?: string } | undefined {
  return (adapter as unknown as { options?: { schema?: string } }).options;
}

describe('parseDatabaseUrl', () => {
  it('returns discrete fields', () => {
    expect(parseDatabaseUrl('postgresql://app:secret@db.example:6543/latchkey_auth')).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'app',
      password: 'secret',
      database: 'latchkey_auth',
    });
  });

  it('accepts postgres:// and defaults the port to 5432 and the user to postgres', () => {
    expect(parseDatabaseUrl('postgres://127.0.0.1/x')).toEqual({
      host: '127.0.0.1',
      port: 5432,
      user: 'postgres',
      database: 'x',
    });
  });

  it('percent-decodes a password full of URL delimiters', () => {
    const password = 'p@ss:w/rd#?%&= +ü"\'';
    const url = `postgresql://svc%40user:${encodeURIComponent(password)}@127.0.0.1:5432/latchkey_audit`;
    const config = parseDatabaseUrl(url);
    expect(config.password).toBe(password);
    expect(config.user).toBe('svc@user');
    expect(config.host).toBe('127.0.0.1');
    expect(config.database).toBe('latchkey_audit');
  });

  it('keeps an empty password distinct from no password', () => {
    expect(parseDatabaseUrl('postgresql://u@h/d').password).toBeUndefined();
    expect(parseDatabaseUrl('postgresql://u:x@h/d').password).toBe('x');
  });

  it('unwraps IPv6 literals', () => {
    expect(parseDatabaseUrl('postgresql://u@[::1]:5433/d')).toMatchObject({
      host: '::1',
      port: 5433,
    });
  });

  it('reads schema, sslmode, host, application_name and connect_timeout parameters', () => {
    const config = parseDatabaseUrl(
      'postgresql://u@ignored/d?schema=tenant_a&sslmode=verify-full&host=%2Fvar%2Frun%2Fpostgresql' +
        '&application_name=registration&connect_timeout=3',
    );
    expect(config).toMatchObject({
      host: '/var/run/postgresql',
      schema: 'tenant_a',
      ssl: { rejectUnauthorized: true },
      application_name: 'registration',
      connectionTimeoutMillis: 3000,
    });
    expect(parseDatabaseUrl('postgresql://u@h/d?sslmode=require').ssl).toEqual({
      rejectUnauthorized: false,
    });
    expect(parseDatabaseUrl('postgresql://u@h/d?sslmode=disable').ssl).toBe(false);
  });

  it.each([
    ['not a url', /not a URL/],
    ['mysql://u@h/d', /scheme must be postgresql/],
    ['postgresql://u@h', /no database name/],
    ['postgresql://u@h/', /no database name/],
    ['postgresql://u:%E0%A4%A@h/d', /percent-encoding/],
    ['postgresql://u@h:99999/d', /./],
    ['postgresql://u@h/d?sslmode=bogus', /unknown sslmode/],
  ])('rejects %s', (url, message) => {
    expect(() => parseDatabaseUrl(url)).toThrow(message);
  });

  it('never echoes the password in its errors', () => {
    try {
      parseDatabaseUrl('postgresql://u:topsecret@h/d?sslmode=bogus');
      throw new Error('expected a failure');
    } catch (error) {
      expect(String(error)).not.toContain('topsecret');
    }
  });
});

describe('pgAdapterFromUrl', () => {
  const url = `postgresql://app:${encodeURIComponent('a@b:c/d')}@127.0.0.1:5432/latchkey_registration`;

  it('gives PrismaPg discrete fields (no connectionString) and fail-fast timeouts', () => {
    const adapter = pgAdapterFromUrl(url);
    expect(adapter).toBeInstanceOf(PrismaPg);
    const config = poolConfigOf(adapter);
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 5432,
      user: 'app',
      password: 'a@b:c/d',
      database: 'latchkey_registration',
      max: 10,
    });
    expect(config.connectionString).toBeUndefined();
    expect(config.connectionTimeoutMillis).toBeGreaterThan(0);
    expect(config.connectionTimeoutMillis).toBeLessThanOrEqual(10_000);
    expect(config.idleTimeoutMillis).toBeGreaterThan(0);
  });

  it('takes the pool size as a number or in options', () => {
    expect(poolConfigOf(pgAdapterFromUrl(url, 3)).max).toBe(3);
    expect(
      poolConfigOf(pgAdapterFromUrl(url, { max: 7, connectionTimeoutMillis: 250 })),
    ).toMatchObject({
      max: 7,
      connectionTimeoutMillis: 250,
    });
  });

  it('prefers an explicit timeout over connect_timeout, and uses connect_timeout over the default', () => {
    expect(poolConfigOf(pgAdapterFromUrl(`${url}?connect_timeout=2`)).connectionTimeoutMillis).toBe(
      2000,
    );
    expect(
      poolConfigOf(pgAdapterFromUrl(`${url}?connect_timeout=2`, { connectionTimeoutMillis: 100 }))
        .connectionTimeoutMillis,
    ).toBe(100);
  });

  it('passes ?schema= as the adapter schema option, not as a pool setting', () => {
    const adapter = pgAdapterFromUrl(`${url}?schema=other`);
    expect(optionsOf(adapter)).toEqual({ schema: 'other' });
    expect(poolConfigOf(adapter)).not.toHaveProperty('schema');
    expect(optionsOf(pgAdapterFromUrl(url))).toBeUndefined();
  });

  it('sets statement/query timeouts and allowExitOnIdle only when asked', () => {
    const plain = poolConfigOf(pgAdapterFromUrl(url));
    expect(plain.statement_timeout).toBeUndefined();
    expect(plain.query_timeout).toBeUndefined();
    expect(plain.allowExitOnIdle).toBeUndefined();
    const tuned = poolConfigOf(
      pgAdapterFromUrl(url, {
        statementTimeoutMillis: 1000,
        queryTimeoutMillis: 2000,
        allowExitOnIdle: true,
      }),
    );
    expect(tuned).toMatchObject({
      statement_timeout: 1000,
      query_timeout: 2000,
      allowExitOnIdle: true,
    });
  });
});

describe('databaseUrlFor / databaseNameFor', () => {
  it('derives the URL from defaults: 127.0.0.1:5432, postgres, latchkey_<service>', () => {
    expect(databaseUrlFor('registration', {})).toBe(
      'postgresql://postgres@127.0.0.1:5432/latchkey_registration',
    );
    expect(databaseNameFor('audit', {})).toBe('latchkey_audit');
  });

  it('applies LATCHKEY_DB_PREFIX (tests use latchkey_test_)', () => {
    expect(databaseUrlFor('auth', { LATCHKEY_DB_PREFIX: 'latchkey_test_' })).toBe(
      'postgresql://postgres@127.0.0.1:5432/latchkey_test_auth',
    );
  });

  it('treats an empty prefix as unset', () => {
    expect(databaseNameFor('auth', { LATCHKEY_DB_PREFIX: '' })).toBe('latchkey_auth');
  });

  it('uses PGHOST, PGPORT, PGUSER and PGPASSWORD, encoding what needs it', () => {
    const env = {
      PGHOST: 'db',
      PGPORT: '6432',
      PGUSER: 'lk user',
      PGPASSWORD: 'p@ss:/#?%',
      LATCHKEY_DB_PREFIX: 'x_',
    };
    const url = databaseUrlFor('provisioning', env);
    expect(url).toBe('postgresql://lk%20user:p%40ss%3A%2F%23%3F%25@db:6432/x_provisioning');
    expect(parseDatabaseUrl(url)).toEqual({
      host: 'db',
      port: 6432,
      user: 'lk user',
      password: 'p@ss:/#?%',
      database: 'x_provisioning',
    });
  });

  it('brackets IPv6 hosts and passes Unix socket directories as ?host=', () => {
    expect(parseDatabaseUrl(databaseUrlFor('auth', { PGHOST: '::1' }))).toMatchObject({
      host: '::1',
    });
    expect(parseDatabaseUrl(databaseUrlFor('auth', { PGHOST: '/run/postgresql' }))).toMatchObject({
      host: '/run/postgresql',
      database: 'latchkey_auth',
    });
  });

  it('returns DATABASE_URL as is when set (prefix ignored)', () => {
    const env = { DATABASE_URL: 'postgresql://a@b/c', LATCHKEY_DB_PREFIX: 'latchkey_test_' };
    expect(databaseUrlFor('registration', env)).toBe('postgresql://a@b/c');
  });

  it('prefers <SERVICE>_DATABASE_URL over DATABASE_URL', () => {
    const env = {
      DATABASE_URL: 'postgresql://a@b/c',
      AUDIT_DATABASE_URL: 'postgresql://a@b/audit',
    };
    expect(databaseUrlFor('audit', env)).toBe('postgresql://a@b/audit');
    expect(databaseUrlFor('auth', env)).toBe('postgresql://a@b/c');
  });

  it('reads process.env by default', () => {
    const saved = { ...process.env };
    try {
      delete process.env.DATABASE_URL;
      delete process.env.AUTH_DATABASE_URL;
      delete process.env.PGHOST;
      delete process.env.PGPORT;
      delete process.env.PGUSER;
      delete process.env.PGPASSWORD;
      process.env.LATCHKEY_DB_PREFIX = 'latchkey_test_';
      expect(databaseUrlFor('auth')).toBe(
        'postgresql://postgres@127.0.0.1:5432/latchkey_test_auth',
      );
    } finally {
      process.env = saved;
    }
  });

  it('rejects prefixes and service names that are not plain identifiers', () => {
    expect(() => databaseNameFor('auth', { LATCHKEY_DB_PREFIX: 'Bad-Prefix' })).toThrow(
      /LATCHKEY_DB_PREFIX/,
    );
    expect(() => databaseNameFor('auth', { LATCHKEY_DB_PREFIX: 'x"; DROP' })).toThrow(
      /LATCHKEY_DB_PREFIX/,
    );
    expect(() => databaseNameFor('Auth', {})).toThrow(/service/);
    expect(() => databaseNameFor('a'.repeat(60), {})).toThrow(/too long/);
  });
});
