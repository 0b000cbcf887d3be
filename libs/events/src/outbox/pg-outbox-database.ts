/**
 * The outbox relay's database surface on a plain `pg.Pool`: the relay runs the
 * same few statements many times a second, and on the pool they skip the ORM's
 * query compiler. Same semantics as the Prisma client it replaces: a
 * transaction commits when `fn` resolves, rolls back when it throws, and is
 * abandoned (its connection closed, so PostgreSQL rolls it back) after `timeout`.
 */
import { lease } from '@latchkey/service-kit';
import type { Pool } from 'pg';
import type { OutboxDatabase, SqlTransaction } from './outbox';

interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

function surface(q: Queryable): SqlTransaction {
  return {
    async $queryRawUnsafe<T>(query: string, ...values: unknown[]): Promise<T> {
      return (await q.query(query, values)).rows as T;
    },
    async $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number> {
      return (await q.query(query, values)).rowCount ?? 0;
    },
  };
}

export class TransactionTimeoutError extends Error {
  constructor(ms: number) {
    super(`transaction did not finish within ${ms} ms; rolled back`);
    this.name = 'TransactionTimeoutError';
  }
}

export function pgOutboxDatabase(pool: Pool): OutboxDatabase {
  return {
    ...surface(pool as unknown as Queryable),
    async $transaction<R>(
      fn: (tx: SqlTransaction) => Promise<R>,
      options: { maxWait?: number; timeout?: number } = {},
    ): Promise<R> {
      // PostgreSQL may drop the connection between two statements (a restart: 57P01): the lease
      // listens for that while the connection is held; the next statement fails, and the
      // connection is closed rather than reused.
      const held = await lease(pool, 'outbox relay');
      const client = held.client;
      const timeoutMs = options.timeout ?? 5_000;
      let timer: NodeJS.Timeout | undefined;
      // Set when the connection must be closed rather than reused.
      let discard: Error | undefined;
      try {
        try {
          await client.query('BEGIN');
        } catch (err) {
          discard = err as Error;
          throw err;
        }
        const work = fn(surface(client as unknown as Queryable));
        const expired = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TransactionTimeoutError(timeoutMs)), timeoutMs);
        });
        let result: R;
        try {
          result = await Promise.race([work, expired]);
        } catch (err) {
          if (err instanceof TransactionTimeoutError) {
            discard = err; // closing the connection makes the server roll back
            work.catch(() => undefined);
          } else {
            await client.query('ROLLBACK').catch((e: Error) => (discard = e));
          }
          throw err;
        }
        try {
          await client.query('COMMIT');
        } catch (err) {
          discard = err as Error;
          throw err;
        }
        return result;
      } finally {
        clearTimeout(timer);
        held.release(discard);
      }
    },
  };
}
