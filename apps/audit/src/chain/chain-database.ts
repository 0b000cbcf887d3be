/**
 * The chain's own connection pool (node-postgres). Appends, checkpoints, the SOC
 * stream cursor and retention run as a few set-based statements per batch with
 * array parameters, and records arrive by COPY; through the Prisma client (its
 * WebAssembly query engine copies every multi-megabyte parameter into memory that
 * never shrinks) ingest was 2x slower and used gigabytes. Reads for the API stay on Prisma.
 */
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { HealthRegistry, lease, parseDatabaseUrl, watchPool } from '@latchkey/service-kit';
import { Pool, type PoolClient } from 'pg';
import { type AuditConfig, AUDIT_CONFIG } from '../config';

/** What chain code needs of a transaction (a pg PoolClient inside BEGIN … COMMIT). */
export interface SqlTx {
  query<R extends object = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** The part of pg's connection a COPY FROM STDIN drives (pg's "Submittable" protocol). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/**
 * `COPY … FROM STDIN` of ready-made text-format rows, as a pg Submittable (what
 * pg-copy-streams does, without a stream): 2-3x faster than INSERT … unnest(arrays)
 * for wide rows, on both sides (no array literal to escape and parse). pg ends a
 * query either at handleError or at handleReadyForQuery, never both.
 */
class CopyFromStdin {
  callback?: (err: Error | null, rowCount?: number) => void;
  private rowCount = 0;

  constructor(
    readonly text: string,
    private readonly chunks: readonly Buffer[],
  ) {}

  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    for (const chunk of this.chunks) connection.sendCopyFromChunk(chunk);
    connection.endCopyFrom();
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.rowCount = Number(/\d+$/.exec(msg.text ?? '')?.[0] ?? 0);
  }

  handleReadyForQuery(): void {
    this.callback?.(null, this.rowCount);
  }

  handleError(err: Error): void {
    this.callback?.(err);
  }

  // Not part of a COPY FROM exchange.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** Runs `COPY <table> (<columns>) FROM STDIN` with `chunks` of text-format rows; returns the row count. */
export function copyFrom(tx: SqlTx, text: string, chunks: readonly Buffer[]): Promise<number> {
  if (!/^COPY [a-z_]+ \([a-z_, ]+\) FROM STDIN$/.test(text))
    throw new Error('copyFrom expects COPY <table> (<columns>) FROM STDIN');
  return new Promise((resolve, reject) => {
    const copy = new CopyFromStdin(text, chunks);
    copy.callback = (err, n) => (err ? reject(err) : resolve(n ?? 0));
    (tx as unknown as PoolClient).query(copy as never);
  });
}

const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_SPECIAL_ALL = /[\\\n\r\t]/g;
const COPY_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** One field of a COPY text-format row: NULL as \N, backslash, newline, CR and tab escaped. */
export function copyField(value: string | number | null): string {
  if (value === null) return '\\N';
  if (typeof value === 'number') return String(value);
  return COPY_SPECIAL.test(value)
    ? value.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPES[c]!)
    : value;
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
    // An idle connection PostgreSQL drops is logged and replaced at the next checkout.
    watchPool(this.pool, 'audit chain');
    health.register('postgres-chain', async () => {
      await this.pool.query('SELECT 1');
    });
  }

  /**
   * `fn` inside BEGIN … COMMIT on one connection. A connection PostgreSQL drops while it is
   * held (a restart: 57P01) fails the statement in flight or the next one, is closed rather
   * than reused, and does not end the process (its 'error' is listened for).
   */
  async transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    const held = await lease(this.pool, 'audit chain');
    const client = held.client;
    // Set when the connection must be closed rather than reused.
    let discard: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client as unknown as SqlTx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (discard = e));
      throw err;
    } finally {
      held.release(discard);
    }
  }

  /** One connection, outside any transaction (for session-level advisory locks). */
  async withClient<T>(fn: (client: SqlTx) => Promise<T>): Promise<T> {
    const held = await lease(this.pool, 'audit chain');
    try {
      return await fn(held.client as unknown as SqlTx);
    } finally {
      // A lost connection took its session locks with it; it is closed, not reused.
      held.release();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}
