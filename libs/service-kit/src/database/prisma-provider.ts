/** One way for a service to get its Prisma client: adapter, readiness check, disconnect. */
import type { Provider } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool } from 'pg';
import { SERVICE_CONFIG } from '../bootstrap/service-kit.module';
import { HealthRegistry } from '../health/health-registry';
import { logConnectionLoss, watchPool } from './pg-connections';
import { pgPoolConfigFromUrl } from './prisma-adapter';
import { releasingFailedTransactionEnds } from './prisma-transactions';

interface PrismaLike {
  $queryRawUnsafe(query: string): Promise<unknown>;
  $disconnect(): Promise<void>;
}

/**
 * The `pg.Pool` under each Prisma client made here. Hot paths (a sign-in, the
 * outbox relay) run their few fixed statements on it directly: the same
 * connections, transactions and timeouts, without Prisma's query compiler.
 */
const pools = new WeakMap<object, Pool>();

/** The pool under a client made by `prismaProvider` (undefined for any other client). */
export function pgPoolOf(client: object): Pool | undefined {
  return pools.get(client);
}

/** Injection token of the service's `pg.Pool` (see `pgPoolProvider`). */
export const PG_POOL = Symbol('PG_POOL');

export function prismaProvider<T extends PrismaLike>(
  Client: new (options: { adapter: PrismaPg }) => T,
): Provider {
  return {
    provide: Client,
    useFactory: (
      config: { DATABASE_URL: string; DATABASE_POOL_MAX: number },
      health: HealthRegistry,
    ) => {
      const { config: poolConfig, schema } = pgPoolConfigFromUrl(config.DATABASE_URL, {
        max: config.DATABASE_POOL_MAX,
      });
      // Raw statements name tables without a schema: a non-default schema is the search path.
      if (schema) poolConfig.options = `-c search_path="${schema.replace(/"/g, '""')}"`;
      // Listened from the start: PrismaPg adds its own listener only when Prisma first
      // connects, and PG_POOL users (the outbox relay, sign-in reads) may come first.
      const pool = watchPool(new Pool(poolConfig), 'database pool');
      const client = new Client({
        adapter: releasingFailedTransactionEnds(
          new PrismaPg(pool, {
            ...(schema ? { schema } : {}),
            disposeExternalPool: true,
            // A connection held by an interactive transaction (PrismaPg listens on it).
            onConnectionError: (err) => logConnectionLoss('prisma transaction', err),
          }),
        ),
      });
      pools.set(client, pool);
      health.register('postgres', () => client.$queryRawUnsafe('SELECT 1'));
      return Object.assign(client, { onApplicationShutdown: () => client.$disconnect() });
    },
    inject: [SERVICE_CONFIG, HealthRegistry],
  };
}

/** Provides `PG_POOL`: the pool of the Prisma client `Client` (listed with `prismaProvider(Client)`). */
export function pgPoolProvider(Client: abstract new (...args: never[]) => object): Provider {
  return {
    provide: PG_POOL,
    useFactory: (client: object) => {
      const pool = pgPoolOf(client);
      if (!pool) throw new Error('PG_POOL: the Prisma client was not made by prismaProvider');
      return pool;
    },
    inject: [Client],
  };
}
