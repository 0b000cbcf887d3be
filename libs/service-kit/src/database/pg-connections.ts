/**
 * node-postgres connections that outlive a PostgreSQL restart. A pooled or checked-out
 * connection whose backend goes away (57P01 on a restart or a pg_terminate_backend, a
 * reset socket) emits 'error' on its client; an 'error' nobody listens for ends the
 * process. The pool listens on idle connections only when someone listens on the pool,
 * and never on a checked-out one: these helpers add both listeners, log the loss (code
 * and message only: no connection settings) and let the operation fail with an error
 * that `toDomainError` maps to UNAVAILABLE. The pool replaces a lost connection at the
 * next checkout.
 */
import { Logger } from '@nestjs/common';
import type { Pool, PoolClient } from 'pg';

const logger = new Logger('postgres');

/** Logs a lost connection: what it was used for, the SQLSTATE or socket code, the message. */
export function logConnectionLoss(use: string, err: unknown): void {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? ` (${e.code})` : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  logger.warn(`${use}: PostgreSQL connection lost${code}: ${message}`);
}

/** Listens for the pool's 'error' (an idle connection dropped): logged, the pool discards it. */
export function watchPool<P extends Pool>(pool: P, use: string): P {
  pool.on('error', (err) => logConnectionLoss(use, err));
  return pool;
}

/** A checked-out connection with an 'error' listener for as long as it is held. */
export interface Lease {
  readonly client: PoolClient;
  /** The error that broke the connection while it was held, if any. */
  readonly lost: Error | undefined;
  /**
   * Gives the connection back; it is closed rather than reused when `err` is given or the
   * connection was lost. Idempotent.
   */
  release(err?: Error): void;
}

/** Checks out a connection of `pool` and listens for its loss until it is released. */
export async function lease(pool: Pool, use: string): Promise<Lease> {
  const client = await pool.connect();
  let lost: Error | undefined;
  let released = false;
  // The statement in flight (if any) fails with the same error; the next one fails fast
  // ("Client has encountered a connection error and is not queryable").
  const onError = (err: Error) => {
    if (!lost) logConnectionLoss(use, err);
    lost ??= err;
  };
  client.on('error', onError);
  return {
    client,
    get lost() {
      return lost;
    },
    release(err?: Error) {
      if (released) return;
      released = true;
      client.off('error', onError);
      client.release(err ?? lost);
    },
  };
}
