/**
 * The chain's own connection pool (node-postgres). Appends, checkpoints, the SOC
 * stream cursor and retention run as a few set-based statements per batch with
 * array parameters; through the Prisma client (its WebAssembly query engine copies
 * every multi-megabyte parameter into memory that never shrinks) ingest was 2x
 * slower and used gigabytes. Reads for the API stay on Prisma.
 */
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { HealthRegistry, parseDatabaseUrl } from '@latchkey/service-kit';
import { Pool, type PoolClient } from 'pg';
import { type AuditConfig, AUDIT_CONFIG } from '../config';

/** What chain code needs of a transaction (a pg PoolClient inside BEGIN … COMMIT). */
export interface SqlTx {
  query<R extends object = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

@Injectable()
export class ChainDatabase implements OnApplicationShutdown {
  private readonly pool: Pool;

  constructor(@Inject(AUDIT_CONFIG) config: AuditConfig, health: HealthRegistry) {
    const { schema, ...conn } = parseDatabaseUrl(config.DATABASE_URL);
    this.pool = new Pool({
      ...conn,
      max: Math.max(2, Math.min(config.DATABASE_POOL_MAX, config.AUDIT_PARTITIONS_CONCURRENCY + 3)),
      connectionTimeoutMillis: conn.connectionTimeoutMillis ?? 5_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    this.pool.on('error', () => undefined); // a dropped idle connection; the next checkout reconnects
    health.register('postgres-chain', async () => {
      await this.pool.query('SELECT 1');
    });
  }

  async transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    const client: PoolClient = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client as unknown as SqlTx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** One connection, outside any transaction (for session-level advisory locks). */
  async withClient<T>(fn: (client: SqlTx) => Promise<T>): Promise<T> {
    const client: PoolClient = await this.pool.connect();
    try {
      return await fn(client as unknown as SqlTx);
    } finally {
      client.release();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}
