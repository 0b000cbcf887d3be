import { releaseOnFailedEnd, type EndableTransaction } from './prisma-transactions';

/**
 * A fake driver-adapter transaction: records the statements it is sent and how often its
 * connection is released (what `commit()` / `rollback()` do in @prisma/adapter-pg).
 */
class FakeTransaction implements EndableTransaction {
  readonly sent: string[] = [];
  releases = 0;
  constructor(private readonly failing: ReadonlySet<string>) {}

  async executeRaw(query: { sql: string }): Promise<number> {
    this.sent.push(query.sql);
    if (this.failing.has(query.sql)) throw new Error('Connection terminated unexpectedly');
    return 0;
  }
  async commit(): Promise<void> {
    this.releases++;
  }
  async rollback(): Promise<void> {
    this.releases++;
  }
}

/** What Prisma's transaction manager does to end a transaction (usePhantomQuery false). */
async function end(tx: EndableTransaction, how: 'COMMIT' | 'ROLLBACK'): Promise<void> {
  await tx.executeRaw({ sql: how });
  await (how === 'COMMIT' ? tx.commit() : tx.rollback());
}

describe('releaseOnFailedEnd', () => {
  it.each(['COMMIT', 'ROLLBACK'] as const)(
    'releases the connection once when %s fails, and the error still reaches the caller',
    async (how) => {
      const tx = releaseOnFailedEnd(new FakeTransaction(new Set([how])));
      await expect(end(tx, how)).rejects.toThrow('Connection terminated unexpectedly');
      expect(tx.releases).toBe(1);
      // A later commit or rollback (a retry, a newer Prisma) does not release it twice.
      await tx.rollback();
      await tx.commit();
      expect(tx.releases).toBe(1);
    },
  );

  it.each(['COMMIT', 'ROLLBACK'] as const)('releases once on a %s that succeeds', async (how) => {
    const tx = releaseOnFailedEnd(new FakeTransaction(new Set()));
    await end(tx, how);
    expect(tx.sent).toEqual([how]);
    expect(tx.releases).toBe(1);
  });

  it('keeps the connection when another statement fails (Prisma then sends ROLLBACK)', async () => {
    const tx = releaseOnFailedEnd(new FakeTransaction(new Set(['SELECT 1'])));
    await expect(tx.executeRaw({ sql: 'SELECT 1' })).rejects.toThrow();
    expect(tx.releases).toBe(0);
    await end(tx, 'ROLLBACK');
    expect(tx.releases).toBe(1);
  });
});
