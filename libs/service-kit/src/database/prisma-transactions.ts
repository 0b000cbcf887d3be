/**
 * Interactive Prisma transactions that give their connection back when they cannot end.
 *
 * Prisma 6's client engine ends a transaction on a driver adapter by sending COMMIT or
 * ROLLBACK and only then calling the adapter's `commit()` / `rollback()`, which for
 * `@prisma/adapter-pg` is what releases the pg connection to the pool. When that
 * statement fails — the connection died under the transaction (a PostgreSQL restart: 57P01,
 * "Client has encountered a connection error and is not queryable") — the release never
 * happens: each such transaction keeps one pool slot forever, and after DATABASE_POOL_MAX of
 * them every query of the service times out waiting for a connection until it is restarted.
 *
 * `releasingFailedTransactionEnds` wraps the adapter so that a failed COMMIT or ROLLBACK
 * releases the connection (the pool closes it when it is broken; after a failed COMMIT on a
 * live connection PostgreSQL has already ended the transaction). The error still reaches the
 * caller, and a later `commit()` / `rollback()` is a no-op instead of a double release.
 */
import type { PrismaPg } from '@prisma/adapter-pg';

/** What this needs of a driver-adapter transaction (`Transaction` of @prisma/driver-adapter-utils). */
export interface EndableTransaction {
  executeRaw(query: { sql: string }): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

const ENDS = new Set(['COMMIT', 'ROLLBACK']);

/** Makes `tx` release its connection when its COMMIT or ROLLBACK statement fails (in place). */
export function releaseOnFailedEnd<T extends EndableTransaction>(transaction: T): T {
  const tx: EndableTransaction = transaction;
  const executeRaw = tx.executeRaw.bind(tx);
  const commit = tx.commit.bind(tx);
  const rollback = tx.rollback.bind(tx);
  let released = false;
  const once = (end: () => Promise<void>) => async () => {
    if (released) return;
    released = true;
    await end();
  };
  tx.commit = once(commit);
  tx.rollback = once(rollback);
  tx.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (err) {
      if (ENDS.has(query.sql.trim().toUpperCase())) await tx.rollback().catch(() => undefined);
      throw err;
    }
  };
  return transaction;
}

/** `factory` (in place), its adapters' transactions wrapped by `releaseOnFailedEnd`. */
export function releasingFailedTransactionEnds(factory: PrismaPg): PrismaPg {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) =>
      releaseOnFailedEnd(await startTransaction(isolationLevel));
    return adapter;
  };
  return factory;
}
