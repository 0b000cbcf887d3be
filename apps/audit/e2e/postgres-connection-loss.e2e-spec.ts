/**
 * PostgreSQL drops a connection a component holds (what a restart does to every connection:
 * 57P01, then the socket closes), here with pg_terminate_backend on a scratch database.
 * For each place the audit service (and the other services, through service-kit and
 * libs/events) holds pg connections, the process must survive — no 'error' without a
 * listener — the failed operation must map to UNAVAILABLE, and the component must work again.
 * Only backends whose pid the component's own connection reported are terminated.
 */
import { type FactoryProvider, Logger } from '@nestjs/common';
import { pgOutboxDatabase } from '@latchkey/events';
import {
  HealthRegistry,
  pgPoolProvider,
  prismaProvider,
  toDomainError,
} from '@latchkey/service-kit';
import { ScratchDatabase } from '@latchkey/testing';
import { Client, type Pool } from 'pg';
import { ChainDatabase, copyFrom, type SqlTx } from '../src/chain/chain-database';
import type { AuditConfig } from '../src/config';
import { PrismaClient } from '../src/generated/prisma/client';

const NAME = `latchkey_scratch_connloss_${process.pid}`;
// PostgreSQL trusts local connections here and never asks for it: it must not be logged.
const PASSWORD = 'connloss-secret-never-logged';
const URL = `postgresql://postgres:${PASSWORD}@127.0.0.1:5432/${NAME}`;
const POOL_MAX = 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let scratch: ScratchDatabase;
let admin: Client;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);
let warnings: jest.SpyInstance;

/** Terminates backend `pid` (reported by the component's own connection) and waits until it is gone. */
async function terminate(pid: number): Promise<void> {
  const { rows } = await admin.query<{ ok: boolean }>(
    'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE pid = $1 AND datname = $2',
    [pid, NAME],
  );
  expect(rows).toEqual([{ ok: true }]);
  for (let i = 0; i < 100; i++) {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
    if (!rowCount) break;
    await sleep(20);
  }
  // The closed socket reaches the client on a later turn of the event loop.
  await sleep(150);
}

/** Runs `query` (a pg_sleep) and terminates its backend once the statement is running. */
async function terminateDuring<T>(pid: number, query: Promise<T>): Promise<unknown> {
  const outcome = query.then(
    () => new Error('the query survived its terminated backend'),
    (err: unknown) => err,
  );
  for (let i = 0; i < 250; i++) {
    const { rowCount } = await admin.query(
      `SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'`,
      [pid],
    );
    if (rowCount) break;
    await sleep(20);
  }
  await terminate(pid);
  return outcome;
}

async function pidOf(q: { query(text: string): Promise<{ rows: unknown[] }> }): Promise<number> {
  const { rows } = await q.query('SELECT pg_backend_pid() AS pid');
  return (rows[0] as { pid: number }).pid;
}

/** The error `fn` rejects with (fails when it resolves). */
async function failureOf(fn: () => Promise<unknown>): Promise<unknown> {
  return fn().then(
    () => new Error('expected the operation to fail'),
    (err: unknown) => err,
  );
}

function expectUnavailable(err: unknown): void {
  const mapped = toDomainError(err);
  expect({ kind: mapped.kind, reason: mapped.reason }).toEqual({
    kind: 'UNAVAILABLE',
    reason: 'DEPENDENCY_UNAVAILABLE',
  });
}

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  scratch = await ScratchDatabase.create(NAME, 'audit');
  admin = new Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
});

beforeEach(() => {
  warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
});

afterEach(() => {
  // A connection 'error' nobody listened for would have ended a service.
  expect(uncaught).toEqual([]);
  for (const call of warnings.mock.calls) expect(JSON.stringify(call)).not.toContain(PASSWORD);
  warnings.mockRestore();
});

afterAll(async () => {
  process.off('uncaughtException', onUncaught);
  await admin?.end();
  await scratch?.drop();
});

describe('the audit chain pool (ChainDatabase)', () => {
  let chain: ChainDatabase;

  beforeAll(() => {
    const config = {
      DATABASE_URL: URL,
      DATABASE_POOL_MAX: POOL_MAX,
      AUDIT_PARTITIONS_CONCURRENCY: 1,
    } as AuditConfig;
    chain = new ChainDatabase(config, new HealthRegistry());
  });

  afterAll(() => chain?.onApplicationShutdown());

  const pidInChain = () => chain.transaction((tx) => pidOf(tx));

  it('a transaction whose connection is dropped between statements fails UNAVAILABLE; the next one works', async () => {
    const err = await failureOf(() =>
      chain.transaction(async (tx) => {
        await terminate(await pidOf(tx));
        await tx.query('SELECT 1');
      }),
    );
    expectUnavailable(err);
    expect(warnings).toHaveBeenCalledWith(expect.stringContaining('PostgreSQL connection lost'));
    await expect(chain.transaction((tx) => tx.query('SELECT 1 AS one'))).resolves.toMatchObject({
      rows: [{ one: 1 }],
    });
  });

  it('a transaction whose statement is running when the connection is dropped fails UNAVAILABLE; the next one works', async () => {
    let during: unknown;
    const err = await failureOf(() =>
      chain.transaction(async (tx) => {
        during = await terminateDuring(await pidOf(tx), tx.query('SELECT pg_sleep(30)'));
        throw during;
      }),
    );
    expect(err).toBe(during);
    expect((during as { code?: string }).code).toBe('57P01');
    expectUnavailable(err);
    await expect(pidInChain()).resolves.toEqual(expect.any(Number));
  });

  it('a COPY on a dropped connection fails UNAVAILABLE; the next COPY works', async () => {
    const copy = (tx: SqlTx) =>
      tx
        .query('CREATE TEMP TABLE copy_probe (a text) ON COMMIT DROP')
        .then(() => copyFrom(tx, 'COPY copy_probe (a) FROM STDIN', [Buffer.from('x\ny\n')]));
    const err = await failureOf(() =>
      chain.transaction(async (tx) => {
        await terminate(await pidOf(tx));
        return copy(tx);
      }),
    );
    expectUnavailable(err);
    await expect(chain.transaction(copy)).resolves.toBe(2);
  });

  it('a session held for an advisory lock (the SOC stream publisher) loses its connection: UNAVAILABLE, and the lock can be taken again', async () => {
    const lock = `SELECT pg_try_advisory_lock(hashtext('connloss:probe')) AS locked`;
    const err = await failureOf(() =>
      chain.withClient(async (c) => {
        expect((await c.query(lock)).rows).toEqual([{ locked: true }]);
        try {
          await terminate(await pidOf(c));
          await c.query('SELECT 1');
        } finally {
          await c.query(`SELECT pg_advisory_unlock(hashtext('connloss:probe'))`);
        }
      }),
    );
    expectUnavailable(err);
    await expect(
      chain.withClient(async (c) => {
        const { rows } = await c.query(lock);
        await c.query(`SELECT pg_advisory_unlock(hashtext('connloss:probe'))`);
        return rows;
      }),
    ).resolves.toEqual([{ locked: true }]);
  });

  it('an idle pooled connection that is dropped is replaced', async () => {
    const pid = await pidInChain(); // now idle in the pool
    await terminate(pid);
    const next = await pidInChain();
    expect(next).not.toBe(pid);
  });
});

describe('the Prisma client and PG_POOL of prismaProvider (every service)', () => {
  let prisma: PrismaClient;
  let pool: Pool;

  beforeAll(() => {
    const provider = prismaProvider(PrismaClient) as FactoryProvider<PrismaClient>;
    prisma = provider.useFactory(
      { DATABASE_URL: URL, DATABASE_POOL_MAX: POOL_MAX },
      new HealthRegistry(),
    ) as PrismaClient;
    pool = (pgPoolProvider(PrismaClient) as FactoryProvider<Pool>).useFactory(prisma) as Pool;
  });

  afterAll(() => prisma?.$disconnect());

  it('an idle PG_POOL connection dropped before Prisma ever connected does not end the process', async () => {
    const pid = await pidOf(pool); // the pool's one connection, idle again
    await terminate(pid);
    await expect(pidOf(pool)).resolves.not.toBe(pid);
  });

  it('a raw query whose connection is dropped while it runs fails UNAVAILABLE (Prisma P2010 wrapping 57P01)', async () => {
    // Hold one of the two connections, so that Prisma's next statements share the other.
    const pinned = await pool.connect();
    let err: unknown;
    try {
      const [{ pid }] = await prisma.$queryRawUnsafe<{ pid: number }[]>(
        'SELECT pg_backend_pid() AS pid',
      );
      err = await terminateDuring(pid, prisma.$queryRawUnsafe('SELECT pg_sleep(30)'));
    } finally {
      pinned.release();
    }
    expect(err).toMatchObject({ name: 'PrismaClientKnownRequestError', code: 'P2010' });
    expectUnavailable(err);
    await expect(prisma.$queryRawUnsafe('SELECT 1 AS one')).resolves.toEqual([{ one: 1 }]);
  });

  it(`interactive transactions whose connection is dropped fail UNAVAILABLE and give their pool slot back (more of them than DATABASE_POOL_MAX=${POOL_MAX})`, async () => {
    let terminated = 0;
    for (let i = 0; i <= POOL_MAX; i++) {
      const err = await failureOf(() =>
        prisma.$transaction(async (tx) => {
          const [{ pid }] = await tx.$queryRawUnsafe<{ pid: number }[]>(
            'SELECT pg_backend_pid() AS pid',
          );
          await terminate(pid);
          terminated++;
          // A model query and a raw one: both fail on the dead connection.
          if (i % 2) await tx.auditRecord.findFirst();
          else await tx.$queryRawUnsafe('SELECT 1');
        }),
      );
      expectUnavailable(err);
    }
    expect(terminated).toBe(POOL_MAX + 1);
    expect(warnings).toHaveBeenCalledWith(expect.stringContaining('prisma transaction'));
    // Without the release, every slot is held by a dead transaction: this would time out.
    await expect(prisma.$transaction((tx) => tx.auditRecord.count())).resolves.toBe(0);
    await expect(pidOf(pool)).resolves.toEqual(expect.any(Number));
    expect(pool.totalCount).toBeLessThanOrEqual(POOL_MAX);
  });

  it('the outbox relay transaction on PG_POOL (pgOutboxDatabase) fails UNAVAILABLE and the next one works', async () => {
    const outbox = pgOutboxDatabase(pool);
    const err = await failureOf(() =>
      outbox.$transaction(async (tx) => {
        const [{ pid }] = await tx.$queryRawUnsafe<{ pid: number }[]>(
          'SELECT pg_backend_pid() AS pid',
        );
        await terminate(pid);
        await tx.$executeRawUnsafe('SELECT 1');
      }),
    );
    expectUnavailable(err);
    await expect(
      outbox.$transaction((tx) => tx.$queryRawUnsafe<{ one: number }[]>('SELECT 1 AS one')),
    ).resolves.toEqual([{ one: 1 }]);
  });
});
