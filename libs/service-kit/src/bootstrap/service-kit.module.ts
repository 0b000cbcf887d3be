/** What every service gets: config, logger, health, metrics, the error mapping. */
import { type DynamicModule, Global, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import type { Logger } from 'pino';
import { DomainErrorFilter } from '../errors/exception-filter';
import { HealthController } from '../health/health.controller';
import { HealthRegistry } from '../health/health-registry';
import { MetricsController, MetricsRegistry } from '../metrics/metrics';
import { MalformedRequestGuard } from './malformed-messages';

export const SERVICE_CONFIG = Symbol('SERVICE_CONFIG');
export const SERVICE_LOGGER = Symbol('SERVICE_LOGGER');
export const SERVICE_NAME = Symbol('SERVICE_NAME');

@Global()
@Module({})
export class ServiceKitModule {
  static forRoot(options: { service: string; config: object; logger: Logger }): DynamicModule {
    return {
      module: ServiceKitModule,
      global: true,
      controllers: [HealthController, MetricsController],
      providers: [
        HealthRegistry,
        MetricsRegistry,
        { provide: SERVICE_NAME, useValue: options.service },
        { provide: SERVICE_CONFIG, useValue: options.config },
        { provide: SERVICE_LOGGER, useValue: options.logger },
        { provide: APP_FILTER, useClass: DomainErrorFilter },
        { provide: APP_GUARD, useClass: MalformedRequestGuard },
      ],
      exports: [HealthRegistry, MetricsRegistry, SERVICE_NAME, SERVICE_CONFIG, SERVICE_LOGGER],
    };
  }
}
