/** One way for a service to get its Prisma client: adapter, readiness check, disconnect. */
import type { Provider } from '@nestjs/common';
import type { PrismaPg } from '@prisma/adapter-pg';
import { SERVICE_CONFIG } from '../bootstrap/service-kit.module';
import { HealthRegistry } from '../health/health-registry';
import { pgAdapterFromUrl } from './prisma-adapter';

interface PrismaLike {
  $queryRawUnsafe(query: string): Promise<unknown>;
  $disconnect(): Promise<void>;
}

export function prismaProvider<T extends PrismaLike>(
  Client: new (options: { adapter: PrismaPg }) => T,
): Provider {
  return {
    provide: Client,
    useFactory: (
      config: { DATABASE_URL: string; DATABASE_POOL_MAX: number },
      health: HealthRegistry,
    ) => {
      const client = new Client({
        adapter: pgAdapterFromUrl(config.DATABASE_URL, { max: config.DATABASE_POOL_MAX }),
      });
      health.register('postgres', () => client.$queryRawUnsafe('SELECT 1'));
      return Object.assign(client, { onApplicationShutdown: () => client.$disconnect() });
    },
    inject: [SERVICE_CONFIG, HealthRegistry],
  };
}
