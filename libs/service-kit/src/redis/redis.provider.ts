/** One way for a service to get its Redis client: fail-fast options, readiness check, quit. */
import type { Provider } from '@nestjs/common';
import type { RedisConfig } from '../config/config';
import { SERVICE_CONFIG } from '../bootstrap/service-kit.module';
import { HealthRegistry } from '../health/health-registry';
import { createRedisFromConfig } from './redis';

/** Injects a `RedisClient` (a Redis or a Redis Cluster client, per REDIS_MODE). */
export const REDIS = Symbol('REDIS');

export const redisProvider: Provider = {
  provide: REDIS,
  useFactory: (config: RedisConfig, health: HealthRegistry) => {
    const redis = createRedisFromConfig(config);
    // Errors surface on the commands that hit them; this only keeps them out of stderr.
    redis.on('error', () => undefined);
    health.register('redis', () => redis.ping());
    return Object.assign(redis, {
      onApplicationShutdown: () => redis.quit().catch(() => undefined),
    });
  },
  inject: [SERVICE_CONFIG, HealthRegistry],
};
