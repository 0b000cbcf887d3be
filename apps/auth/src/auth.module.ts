import { type DynamicModule, Module } from '@nestjs/common';
import { EventsModule, Topics } from '@latchkey/events';
import { prismaProvider, REDIS, redisProvider } from '@latchkey/service-kit';
import { AUTH_CONFIG, type AuthConfig } from './config';
import { PrismaClient } from './generated/prisma/client';
import { NoncesModule } from './nonces/nonces.module';

@Module({})
export class AuthModule {
  static forRoot(config: AuthConfig): DynamicModule {
    return {
      module: AuthModule,
      imports: [
        {
          module: class InfrastructureModule {},
          global: true,
          providers: [
            prismaProvider(PrismaClient),
            redisProvider,
            { provide: AUTH_CONFIG, useValue: config },
          ],
          exports: [PrismaClient, REDIS, AUTH_CONFIG],
        },
        EventsModule.forRoot({
          brokers: config.KAFKA_BROKERS,
          clientId: config.KAFKA_CLIENT_ID ?? 'latchkey-auth',
          topics: [Topics.auth],
          outboxDatabase: PrismaClient,
        }),
        NoncesModule,
      ],
    };
  }
}
