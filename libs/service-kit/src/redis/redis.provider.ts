/** One way for a service to get its Redis client: fail-fast options, readiness check, quit. */
import type { Provider } from '@nestjs/common';
import { SERVICE_CONFIG } from '../bootstrap/service-kit.module';
import { HealthRegistry } from '../health/health-registry';
import { createRedis } from './redis';

export const REDIS = Symbol('REDIS');

export const redisProvider: Provider = {
  provide: REDIS,
  useFactory: (config: { REDIS_URL: string }, health: HealthRegistry) => {
    const redis = createRedis(config.REDIS_URL);
    // Errors surface on the commands that hit them; this only keeps them out of stderr.
    redis.on('error', () => undefined);
    health.register('redis', () => redis.ping());
    return Object.assign(redis, {
      onApplicationShutdown: () => redis.quit().catch(() => undefined),
    });
  },
  inject: [SERVICE_CONFIG, HealthRegistry],
};
