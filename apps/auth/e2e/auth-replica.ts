/**
 * A second auth replica in the test process: the service's own modules on the test
 * profile's real PostgreSQL, Redis and Kafka, as a scaled-out replica runs. For tests
 * that spy on what the service does inside (e.g. count its signatures), which the
 * running service cannot show from outside without racing the other suites.
 */
import 'reflect-metadata';
import { type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createLogger, loadConfig, ServiceKitModule } from '@latchkey/service-kit';
import { AuthModule } from '../src/auth.module';
import { authConfigShape } from '../src/config';
import { authEnv } from './support';

export async function startAuthReplica(): Promise<INestApplicationContext> {
  const config = loadConfig(authConfigShape, authEnv());
  const logger = createLogger('latchkey-auth-e2e-replica', 'warn');
  @Module({
    imports: [
      ServiceKitModule.forRoot({ service: 'auth', config, logger }),
      AuthModule.forRoot(config),
    ],
  })
  class ReplicaModule {}
  return NestFactory.createApplicationContext(ReplicaModule, { logger: false });
}
