/**
 * A scratch PostgreSQL database for one test file, with a Prisma-shaped raw-SQL
 * surface over node-postgres (enough for code written against OutboxDatabase).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Pool, type PoolClient } from 'pg';
import { REPO_ROOT } from './environment';

const ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';

function bind(sql: string): string {
  return sql; // $1..$n placeholders are already PostgreSQL's
}

class PgTx {
  constructor(private readonly c: Pool | PoolClient) {}
  async $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T> {
    return (await this.c.query(bind(query), values)).rows as T;
  }
  async $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number> {
    return (await this.c.query(bind(query), values)).rowCount ?? 0;
  }
}

export class ScratchDatabase extends PgTx {
  private constructor(
    readonly name: string,
    readonly pool: Pool,
  ) {
    super(pool);
  }

  /** Creates a fresh database and applies one service's committed migrations to it. */
  static async create(name: string, migrationsOf: string): Promise<ScratchDatabase> {
    const admin = new Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${name}"`);
    } finally {
      await admin.end();
    }
    const pool = new Pool({
      connectionString: `postgresql://postgres@127.0.0.1:5432/${name}`,
      max: 5,
    });
    // pool.end() resolves before its clients' sockets close, so drop()'s DROP … WITH (FORCE)
    // can still reach one (57P01): an idle client's error with no listener would fail the suite.
    pool.on('error', () => undefined);
    const dir = join(REPO_ROOT, 'apps', migrationsOf, 'prisma/migrations');
    for (const m of readdirSync(dir)
      .filter((d) => /^\d/.test(d))
      .sort()) {
      await pool.query(readFileSync(join(dir, m, 'migration.sql'), 'utf8'));
    }
    return new ScratchDatabase(name, pool);
  }

  async $transaction<R>(fn: (tx: PgTx) => Promise<R>): Promise<R> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(new PgTx(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async drop(): Promise<void> {
    await this.pool.end();
    const admin = new Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin
      .query(`DROP DATABASE IF EXISTS "${this.name}" WITH (FORCE)`)
      .finally(() => admin.end());
  }
}
